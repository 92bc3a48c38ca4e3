# Multi-stage build of the example server with every backend compiled in.
#   docker build -t auth-server .
#   docker run -p 8080:8080 -e SECRET_KEY=... -e PUBLIC_URL=https://auth.example.com auth-server
# docker-compose.yml runs it with PostgreSQL, Redis and a mail sink.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p example-server --features postgres,redis,smtp \
 && cp target/release/example-server /example-server

# Small runtime: glibc and CA certificates, no shell, non-root (uid 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /example-server /usr/local/bin/example-server
USER nonroot:nonroot
ENV BIND_ADDR=0.0.0.0:8080 LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/example-server"]
