# syntax=docker/dockerfile:1
# The pipeline binary in a small static image: `pipeline api`, `pipeline worker`,
# or any other subcommand (`docker run IMAGE --help`).

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/pipeline ./cmd/pipeline

# distroless/static: CA certificates, tzdata and a nonroot user, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pipeline /usr/local/bin/pipeline
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/pipeline"]
CMD ["api"]
