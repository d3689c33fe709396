package aws

import (
	"errors"
	"net/url"
	"strings"
)

// endpoint is where a call to service in region goes.
func (p *Proxy) endpoint(service, region string) (*url.URL, error) {
	if p.upstream != nil {
		return p.upstream, nil
	}
	suffix := ".amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		suffix += ".cn"
	}
	host := service + "." + region + suffix
	switch service {
	case "iam":
		host = "iam" + suffix // global
	case "ses":
		host = "email." + region + suffix
	case "execute-api":
		return nil, errors.New("execute-api calls go to the API's own host name, which the proxy does not know")
	}
	return &url.URL{Scheme: "https", Host: host}, nil
}

// virtualHost moves the bucket of a path-style S3 URL into the host name,
// the addressing AWS recommends and requires for some buckets, when the
// bucket name is a valid DNS label (names with dots would break TLS
// name checks and stay path-style).
func virtualHost(u *url.URL) {
	bucket, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if len(bucket) < 3 || len(bucket) > 63 || !scopePart.MatchString(bucket) || strings.HasSuffix(bucket, "-") {
		return
	}
	u.Host = bucket + "." + u.Host
	u.Path = strings.TrimPrefix(u.Path, "/"+bucket)
	if u.RawPath != "" {
		u.RawPath = strings.TrimPrefix(u.RawPath, "/"+bucket)
	}
	if u.Path == "" {
		u.Path, u.RawPath = "/", ""
	}
}
