# Vigil's image: one binary (server, agent and the embedded dashboard).
# Build: docker build -t vigil .
FROM rust:1-bookworm AS build
RUN rustup target add wasm32-unknown-unknown
WORKDIR /src
COPY . .
# The release profile keeps line tables (for backtraces in development);
# the image's binary is stripped of them: ~200 MB becomes ~30 MB.
RUN cargo build --release --locked -p vigil \
 && install -D -s target/release/vigil /out/vigil

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/vigil /usr/local/bin/vigil
# Not root; the same id the manifests in deploy/ run as.
USER 65532:65532
EXPOSE 9090 9091
ENTRYPOINT ["/usr/local/bin/vigil"]
CMD ["server", "--config", "/etc/vigil/server.yaml"]
