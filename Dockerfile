# syntax=docker/dockerfile:1
# Build stage: the whole workspace, release profile.
FROM rust:1.85-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libssl-dev pkg-config zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bin acd-bridge && strip target/release/acd-bridge

# Run stage: the binary, CA certificates, an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/acd-bridge --create-home acd
COPY --from=build /src/target/release/acd-bridge /usr/local/bin/acd-bridge
USER 10001
WORKDIR /var/lib/acd-bridge
ENTRYPOINT ["acd-bridge"]
CMD ["--help"]
