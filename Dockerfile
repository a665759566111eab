# syntax=docker/dockerfile:1
# Build stage: the toolchain the project is developed with (see README).
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
# Every [[bench]] in Cargo.toml needs a file for the manifest to load, even unbuilt.
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for b in $(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | tail -n +2); do echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked --bin deckhand \
    && rm -rf src benches
COPY src src
COPY benches benches
COPY commands commands
COPY services services
COPY config config
COPY migrations migrations
# The shell page's terminal (xterm.js) is compiled into the binary.
COPY assets assets
# Cargo compares mtimes; make sure the real sources are newer than the stub build.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin deckhand

# Runtime stage: glibc and CA certificates only, no shell, runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/deckhand /usr/local/bin/deckhand
COPY --chown=65532:65532 commands /etc/deckhand/commands
COPY --chown=65532:65532 services /etc/deckhand/services
ENV DECKHAND_LISTEN=0.0.0.0:8080 \
    DECKHAND_COMMANDS__DIR=/etc/deckhand/commands \
    DECKHAND_SERVICES__DIR=/etc/deckhand/services \
    DECKHAND_STORE__SQLITE_PATH=/home/nonroot/data/deckhand.db \
    DECKHAND_LOG__FORMAT=json
USER nonroot:nonroot
WORKDIR /home/nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/deckhand"]
CMD ["serve"]
