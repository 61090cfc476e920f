# meshd container image: a Debian stage builds the static binary with ./build.sh, and the image
# itself is FROM scratch holding only /meshd (no shell, no libc, no CA bundle: meshd brings its
# own trust anchors from the mesh's configuration).
#
#   ./build.sh image     builds it with podman (or docker); see test/image.sh
#
# BUILDER is any Debian 12 or 13 image; where no registry is reachable, test/image.sh makes one
# with debootstrap from the machine's Debian mirror.
ARG BUILDER=docker.io/library/debian:bookworm-slim
FROM ${BUILDER} AS build
ARG MESHD_COMMIT=unknown
WORKDIR /src
COPY . .
RUN GIT_COMMIT="${MESHD_COMMIT}" ./build.sh && cp build/meshd /meshd && /meshd version

FROM scratch
COPY --from=build /meshd /meshd
USER 2102:2102
ENTRYPOINT ["/meshd"]
CMD ["version"]
