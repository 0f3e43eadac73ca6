# calscan: build with the locked dependencies, run as a numeric non-root user
# on a slim image, with the SQLite database on a volume. The dependencies are
# built in a layer of their own (cargo-chef), so a change to calscan's code
# rebuilds only calscan.

FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe: Cargo.toml and Cargo.lock reduced to what the dependencies
# need; it changes only when they do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin calscan
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY assets ./assets
RUN cargo build --release --locked --bin calscan

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=build /src/target/release/calscan /usr/local/bin/calscan
USER 10001:10001
ENV CALSCAN_BIND=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/calscan.db
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["calscan", "healthcheck"]
ENTRYPOINT ["calscan"]
CMD ["serve"]
