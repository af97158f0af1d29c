# cors-proxy container image.
# Stage 1 builds a release binary with the Swift stdlib linked statically;
# stage 2 is a slim Debian with only libcurl and CA certificates.

FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcurl4-openssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
# Stripped: the symbol table and DWARF are ~55 MB of the 82 MB build and nothing reads them in
# the image (profile and debug with a local `swift build -c release`, which keeps them).
RUN swift build -c release --static-swift-stdlib --product cors-proxy \
 && install -D -m 0755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/cors-proxy" /out/cors-proxy \
 && strip /out/cors-proxy

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcurl4 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin cors-proxy
COPY --from=build /out/cors-proxy /usr/local/bin/cors-proxy
COPY deploy/proxy.container.conf /etc/cors-proxy/proxy.conf
USER cors-proxy
# 8080: browser-facing listener; 9901: admin (/healthz /readyz /metrics).
# Mount your own conf at /etc/cors-proxy/proxy.conf (it must listen on 0.0.0.0 inside a container).
EXPOSE 8080 9901
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9901 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
# Exec form: cors-proxy is PID 1 and receives SIGTERM (drain) and SIGHUP (reload) itself.
ENTRYPOINT ["/usr/local/bin/cors-proxy"]
CMD ["serve", "--config", "/etc/cors-proxy/proxy.conf"]
