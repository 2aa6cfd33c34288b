# syntax=docker/dockerfile:1
# extapi: a static binary on a minimal, non-root image.
#   docker build --build-arg VERSION=$(git describe --tags --always) -t extapi .

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH
# CGO_ENABLED=0: no libc in the final image (the SQLite driver is pure Go).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/extapi ./cmd/extapi

# distroless/static: CA certificates, tzdata and /etc/passwd, no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="extapi" \
      org.opencontainers.image.description="Outbound authenticating gateway" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/extapi /usr/local/bin/extapi
# Numeric, so Kubernetes' runAsNonRoot can verify it (65532 is distroless' "nonroot").
USER 65532:65532
ENV EXTAPI_PROXY_ADDR=0.0.0.0:8080 EXTAPI_ADMIN_ADDR=0.0.0.0:8081
EXPOSE 8080 8081
# SIGTERM starts the graceful shutdown (EXTAPI_SHUTDOWN_TIMEOUT, 25s by default): give the
# container runtime a longer stop timeout (compose: stop_grace_period: 30s).
STOPSIGNAL SIGTERM
# No curl in the image: the binary checks its own /healthz on EXTAPI_ADMIN_ADDR. The start
# period covers migrations on first start.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["/usr/local/bin/extapi", "health"]
ENTRYPOINT ["/usr/local/bin/extapi"]
CMD ["serve"]
