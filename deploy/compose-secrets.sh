#!/bin/sh
# The `secrets` job of compose.yaml: generates the mesh's NATS identities
# once and hands each container only the files it needs.
#
#   /secrets       volume mesh-secrets: everything `mesh nats-config --tls`
#                  wrote (every seed, every key). Only this job mounts it.
#   /out/nats      volume secrets-nats: nats-server.conf (its tls/ paths
#                  rewritten to /etc/nats/secure/tls/, where the NATS nodes
#                  mount this volume), tls/ca.pem, tls/server-cert.pem,
#                  tls/server-key.pem.
#   /out/<id>      volume secrets-<id> for admin, ingest, router, processor,
#                  aggregator: <id>.nk, ca.pem, <id>-cert.pem, <id>-key.pem,
#                  owned by uid 1000 (the image's user), mode 0400. Each
#                  service mounts its own at /etc/mesh/nats, read-only.
#
# Generating is skipped when /secrets already holds a config, so a restart
# keeps the identities; ROTATE=1 generates new ones (then restart NATS and
# the services: see README.md, Rotating the secrets). Handing out runs every
# time, so the volumes always match /secrets.
#
# Runs as root in the mesh image (node, sh, coreutils), from /app. The
# directories and the CLI can be moved (test/deploy-secure-cluster.e2e.spec.ts
# runs this script on the host); not as root, files keep the caller as owner.
set -eu

GEN="${SECRETS_DIR:-/secrets}"
OUT="${OUT_DIR:-/out}"
# Where the NATS nodes mount $OUT/nats (deploy/nats/cluster.conf names it too).
SECURE="${NATS_SECURE_DIR:-/etc/nats/secure}"
MESH_CLI="${MESH_CLI:-node tools/mesh/dist/main.js}"
IDENTITIES="admin ingest router processor aggregator"
: "${NATS_HOSTS:?NATS_HOSTS: the NATS host names the server certificate must name, comma-separated}"
: "${MESH_PARTITIONS:?MESH_PARTITIONS: the partition count the service permissions are written for}"

if [ "${ROTATE:-0}" = 1 ] || [ ! -s "$GEN/nats-server.conf" ]; then
  # --force: a run that stopped half-way leaves files without a config;
  # with ROTATE=1 it replaces every identity on purpose.
  $MESH_CLI nats-config --out "$GEN" --tls --hosts "$NATS_HOSTS" --partitions "$MESH_PARTITIONS" --force
else
  echo "secrets: $GEN/nats-server.conf exists, keeping the identities (ROTATE=1 to replace them)"
fi

# Empty a volume without removing its mount point.
clear_dir() { mkdir -p "$1"; chmod -R u+w "$1"; find "$1" -mindepth 1 -delete; }

# install(1) with an owner only as root (in compose); the caller otherwise.
if [ "$(id -u)" = 0 ]; then as_root="-o 0 -g 0"; as_service="-o 1000 -g 1000"; else as_root=""; as_service=""; fi

# NATS: the server config and the server's TLS files, owned by root (the
# nats image's user).
clear_dir "$OUT/nats"
mkdir -p "$OUT/nats/tls"
sed "s#\"$GEN/tls/#\"$SECURE/tls/#g" "$GEN/nats-server.conf" > "$OUT/nats/nats-server.conf"
if grep -q "$GEN/" "$OUT/nats/nats-server.conf"; then
  echo "secrets: $OUT/nats/nats-server.conf still names $GEN/ after rewriting its paths to $SECURE/; the nats-config layout changed" >&2
  exit 1
fi
for f in ca.pem server-cert.pem server-key.pem; do
  install -m 0400 $as_root "$GEN/tls/$f" "$OUT/nats/tls/$f"
done
chmod 0400 "$OUT/nats/nats-server.conf"
chmod 0500 "$OUT/nats/tls" "$OUT/nats"

# One volume per identity, readable by uid 1000 only.
for id in $IDENTITIES; do
  dir="$OUT/$id"
  clear_dir "$dir"
  install -m 0400 $as_service "$GEN/$id.nk" "$dir/$id.nk"
  install -m 0400 $as_service "$GEN/tls/ca.pem" "$dir/ca.pem"
  install -m 0400 $as_service "$GEN/tls/$id-cert.pem" "$dir/$id-cert.pem"
  install -m 0400 $as_service "$GEN/tls/$id-key.pem" "$dir/$id-key.pem"
  if [ -n "$as_service" ]; then chown 1000:1000 "$dir"; fi
  chmod 0500 "$dir"
done
echo "secrets: handed out to nats and to $IDENTITIES"
