module github.com/agenttrail/agenttrail

go 1.26
