# Sourced by run.sh and arm64.sh from the repository root: starts moto on a free loopback port
# with the bench's table (stopped when the calling script exits) and exports the settings the
# functions read, pointed at it.
bash scripts/venv.sh
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" > /dev/null 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null && break
  sleep 0.2
done
.venv/bin/python - "$port" <<'PY'
import sys, boto3
ddb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
s = lambda n: {"AttributeName": n, "AttributeType": "S"}
k = lambda n, t: {"AttributeName": n, "KeyType": t}
gsi = lambda name, pk, sk: {"IndexName": name, "KeySchema": [k(pk, "HASH"), k(sk, "RANGE")], "Projection": {"ProjectionType": "ALL"}}
ddb.create_table(TableName="cobro-bench", BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[s(a) for a in ["pk", "sk", "gsi1pk", "gsi1sk", "duepk", "duesk"]],
                 KeySchema=[k("pk", "HASH"), k("sk", "RANGE")],
                 GlobalSecondaryIndexes=[gsi("gsi1", "gsi1pk", "gsi1sk"), gsi("due", "duepk", "duesk")])
PY

export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export COBRO_TABLE=cobro-bench COBRO_EVENT_BUS=cobro-bench COBRO_CHANNEL=sandbox
# COLDSTART_LIVE=1: as deployed with WhatsApp on (the Graph client is built at init); the first
# send then fails against the unreachable Graph API, so first responses measure little.
if [ "${COLDSTART_LIVE:-0}" = 1 ]; then
  export COBRO_CHANNEL=live WHATSAPP_ACCESS_TOKEN=bench-token WHATSAPP_PHONE_NUMBER_ID=100000000000001
fi
export COBRO_OUTBOUND_QUEUE_URL="http://127.0.0.1:$port/000000000000/cobro-bench"
export COBRO_INBOUND_QUEUE_URL="http://127.0.0.1:$port/000000000000/cobro-bench-inbound"
export COBRO_BLOB_BUCKET=cobro-bench COBRO_EXPORT_BUCKET=cobro-bench-exports
export COBRO_EXPORT_QUEUE_URL="http://127.0.0.1:$port/000000000000/cobro-bench-export"
export COBRO_EVENTS_OUT_QUEUE_URL="http://127.0.0.1:$port/000000000000/cobro-bench-events-out"
export WHATSAPP_VERIFY_TOKEN=bench-verify-token RUST_LOG=info
unset AWS_PROFILE

