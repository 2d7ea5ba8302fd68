# Placeholder until the deploy issue: builds the engine with the project's own set-up script.
FROM debian:bookworm
WORKDIR /src
COPY . .
RUN scripts/setup.sh
CMD ["build/service/ws/demo/wsgate-selftest"]
