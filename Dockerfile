# lvsd in a container: a static binary on distroless.
#
# Build:  docker build -t lvsd .
# Run (the host's network namespace, with only the two capabilities lvsd
# needs, and the existing keepalived configuration read-only):
#
#   docker run -d --name lvsd --network host \
#     --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW \
#     -v /etc/keepalived:/etc/keepalived:ro \
#     lvsd
#
# Options go after the image name (they replace CMD), e.g.
#   docker run … lvsd -f /etc/keepalived/keepalived.conf --metrics-listen 10.0.0.5:9165
# Dumps: `docker kill -s USR1 lvsd` then `docker cp lvsd:/tmp/keepalived.data -`.
# IPVS needs the ip_vs module loaded on the host (modprobe ip_vs), as the
# container cannot load it. The image has no shell: configurations with
# MISC_CHECK, notify or vrrp_script programs need an image that has them
# (use a debian:bookworm-slim final stage and copy them in).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build

FROM gcr.io/distroless/static-debian12
COPY --from=build /src/bin/lvsd /usr/sbin/lvsd
EXPOSE 9165
ENTRYPOINT ["/usr/sbin/lvsd", "--dont-fork", "--log-console"]
CMD ["-f", "/etc/keepalived/keepalived.conf"]
