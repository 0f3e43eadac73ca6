# calscan: build with the locked dependencies, run as a numeric non-root user
# on a slim image, with the SQLite database on a volume.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
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
