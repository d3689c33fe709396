// Package mcp records Model Context Protocol traffic as audit events. It sits
// between an agent (the MCP client) and an MCP server and relays every
// JSON-RPC message unchanged, observing a copy:
//
//   - Stdio runs in place of a stdio server: it starts the real server as a
//     child process and relays newline-delimited JSON-RPC both ways, byte for
//     byte (agenttrail proxy mcp -- SERVER_COMMAND ARGS…).
//   - HTTPProxy is a reverse proxy in front of a Streamable HTTP server:
//     POST with JSON or SSE responses (flushed as they arrive), GET SSE
//     streams and DELETE, with Mcp-Session-Id and MCP-Protocol-Version
//     passed through both ways.
//
// Both transports feed one observer, which pairs each request with its
// response (by JSON-RPC id, per session and direction; batches included) and
// records ONE event per pair when the response arrives: source "mcp-tool",
// action the JSON-RPC method, metadata.mcp as Metadata says. A request that
// gets no response is recorded as an error when the server dies, the session
// ends, the HTTP exchange fails, or Config.Timeout passes.
//
// Decisions a reader of the trail should know:
//
//   - Notifications are not events, except notifications/cancelled: it
//     records the cancelled request at once, result "error", with
//     metadata.mcp.cancelled and the reason; a late response to it is ignored.
//   - ping is never recorded: clients send it as a keep-alive, and it does
//     nothing an auditor would ask about.
//   - A server/discover (the SEP-2575 probe of the 2026 protocol) answered by
//     a JSON-RPC error is not recorded: that is a legacy server declining the
//     new handshake, and the client falls back to initialize, which is.
//   - Server-to-client requests (sampling/createMessage, elicitation/create,
//     roots/list) are recorded with the server as actor: actor_type "system",
//     actor_id "mcp-server:<name>", the agent's org and project, and
//     metadata.mcp.direction "server_to_client" with metadata.mcp.agent naming
//     the agent. An elicitation the user declines or cancels is a failure.
//   - The server name is Config.ServerName when set, else the serverInfo.name
//     the server reports (initialize, or the SEP-2575 _meta serverInfo).
//   - Arguments and content previews pass through the Redactor before the
//     event is recorded, so secrets never reach the Recorder's queue or spool.
//     Arguments over Config.ArgumentsBytes have their strings redacted, then
//     shortened (metadata.mcp.arguments_truncated).
//   - Over HTTP, a response too large to observe (Config.MaxBodyBytes) is
//     recorded as a success whose description says it was not inspected:
//     JSON-RPC errors are small, so a huge response is a result.
package mcp
