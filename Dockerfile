# syntax=docker/dockerfile:1
# Build a static binary, ship it on a minimal non-root image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/extapi ./cmd/extapi

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/extapi /usr/local/bin/extapi
USER nonroot:nonroot
ENV EXTAPI_PROXY_ADDR=0.0.0.0:8080 EXTAPI_ADMIN_ADDR=0.0.0.0:8081
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/usr/local/bin/extapi", "health"]
ENTRYPOINT ["/usr/local/bin/extapi"]
CMD ["serve"]
