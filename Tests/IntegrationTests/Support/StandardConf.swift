/// A conf in front of `upstream` exercising every row of the request table (docs/CONFIG.md).
func standardConf(upstream: String, extra: String = "", admin: Bool = false) -> String {
    """
    listen 127.0.0.1:0
    \(admin ? "admin 127.0.0.1:0" : "")
    upstream api \(upstream)
    upstream dead { url http://127.0.0.1:1; connect_timeout 1s; timeout 2s }
    upstream slow { url \(upstream); timeout 500ms }
    max_body_size 1m

    cors {
        allow_origin      https://app.example.com https://*.example.org
        allow_methods     GET HEAD POST PUT DELETE
        allow_headers     Content-Type Authorization X-Custom
        expose_headers    X-Request-Id
        allow_credentials on
        max_age           10m
    }

    route /api/public/ {
        upstream          api
        allow_origin      *
        allow_credentials off
    }
    route /api/ { upstream api }
    route /report/ { upstream api; enforce report; strip_prefix /report }
    route /big/ { upstream api; max_body_size 0; strip_prefix /big }
    route /dead/ { upstream dead }
    route /slow/ { upstream slow; strip_prefix /slow }
    route = /healthz { upstream api; cors off }
    route /raw/ { upstream api; cors off; strip_prefix /raw }
    \(extra)
    """
}
