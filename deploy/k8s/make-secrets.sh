#!/usr/bin/env bash
# Generates the mesh's NATS identities with `mesh nats-config --tls` and
# creates (or replaces) them as Kubernetes Secrets in the namespace `mesh`:
#
#   nats-server-secure   nats-server.conf (authorization + client TLS, its
#                        paths rewritten to /etc/nats/secure/tls/, where
#                        nats.yaml mounts this Secret), ca.pem,
#                        server-cert.pem, server-key.pem
#   mesh-nats-<id>       <id>.nk, ca.pem, <id>-cert.pem, <id>-key.pem for
#                        admin (the provision Job), ingest, router,
#                        processor, aggregator; each Deployment mounts its
#                        own at /etc/mesh/nats
#
# The generated files live in a temporary directory removed on exit: the
# Secrets are their only copy. Every run makes new identities (a new CA,
# seeds and keys): that is how they are rotated (see deploy/README.md).
#
#   deploy/k8s/make-secrets.sh            # create or replace the Secrets (kubectl apply)
#   deploy/k8s/make-secrets.sh --print    # write the Secret manifests to stdout instead
#
# Needs a built repository (npm run build) for the CLI, or MESH_CLI set to
# another way of running it (e.g. "docker run --rm -v /tmp:/tmp
# nats-event-mesh:0.1.0 tools/mesh/dist/main.js"; it must write where this
# script reads, hence TMPDIR). MESH_PARTITIONS defaults to the value in
# mesh-config.yaml: the permissions name every partition, so they must match.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
namespace=mesh
cluster_domain="${CLUSTER_DOMAIN:-cluster.local}"
mesh_cli="${MESH_CLI:-node $repo/tools/mesh/dist/main.js}"
identities=(admin ingest router processor aggregator)
secure_dir=/etc/nats/secure

print=false
case "${1:-}" in
  --print) print=true ;;
  "") ;;
  *) echo "make-secrets.sh: unknown argument '$1'; use no argument (apply the Secrets) or --print (write them to stdout)" >&2; exit 2 ;;
esac

partitions="${MESH_PARTITIONS:-$(sed -n "s/^  MESH_PARTITIONS: [\"']\([0-9]*\)[\"']$/\1/p" "$here/mesh-config.yaml")}"
if [[ ! "$partitions" =~ ^[0-9]+$ ]]; then
  echo "make-secrets.sh: no MESH_PARTITIONS (read '$partitions' from $here/mesh-config.yaml); set MESH_PARTITIONS to the mesh's partition count" >&2
  exit 2
fi

# Every name a client or a route dials: the client Service (NATS_URL
# tls://nats:4222) and each pod through the headless Service (the routes),
# short and fully qualified.
hosts=()
for name in nats "nats-0.nats-headless" "nats-1.nats-headless" "nats-2.nats-headless"; do
  hosts+=("$name" "$name.$namespace" "$name.$namespace.svc" "$name.$namespace.svc.$cluster_domain")
done
host_list="$(IFS=,; echo "${hosts[*]}")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gen="$work/gen"
# Its report goes to stderr, so that --print writes manifests only.
$mesh_cli nats-config --out "$gen" --tls --hosts "$host_list" --partitions "$partitions" >&2

# The server config names the files where they were generated; in the pod
# they are under /etc/nats/secure/tls/.
sed "s#\"$gen/tls/#\"$secure_dir/tls/#g" "$gen/nats-server.conf" > "$work/nats-server.conf"
if grep -q "$gen/" "$work/nats-server.conf"; then
  echo "make-secrets.sh: nats-server.conf still names $gen/ after rewriting its paths to $secure_dir/; the nats-config layout changed" >&2
  exit 1
fi

secret() {
  local name="$1"
  shift
  if command -v kubectl >/dev/null 2>&1; then
    kubectl create secret generic "$name" --namespace "$namespace" "$@" --dry-run=client -o yaml
    return
  fi
  # No kubectl (--print on a machine without it): the same manifest by hand.
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\ntype: Opaque\ndata:\n' "$name" "$namespace"
  local arg key file
  for arg in "$@"; do
    arg="${arg#--from-file=}"
    key="${arg%%=*}"
    file="${arg#*=}"
    printf '  %s: %s\n' "$key" "$(base64 -w0 < "$file")"
  done
}

emit() {
  secret nats-server-secure \
    --from-file=nats-server.conf="$work/nats-server.conf" \
    --from-file=ca.pem="$gen/tls/ca.pem" \
    --from-file=server-cert.pem="$gen/tls/server-cert.pem" \
    --from-file=server-key.pem="$gen/tls/server-key.pem"
  for id in "${identities[@]}"; do
    echo "---"
    secret "mesh-nats-$id" \
      --from-file="$id.nk=$gen/$id.nk" \
      --from-file=ca.pem="$gen/tls/ca.pem" \
      --from-file="$id-cert.pem=$gen/tls/$id-cert.pem" \
      --from-file="$id-key.pem=$gen/tls/$id-key.pem"
  done
}

if $print; then
  emit
else
  kubectl get namespace "$namespace" >/dev/null 2>&1 || kubectl create namespace "$namespace"
  emit | kubectl apply -f -
  echo "Secrets nats-server-secure and mesh-nats-{${identities[*]// /,}} applied in namespace $namespace." >&2
  echo "Next: kubectl apply -k deploy/k8s; after a rotation restart NATS and the services (deploy/README.md)." >&2
fi
