#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/TARGET from the test vectors
(host/src/verify/testdata/vectors.json), the example manifests, the
manifest reference in docs/operating.md and a few hand-written inputs.

Run from the repository root: `python3 fuzz/seeds.py`. Seeds are named
`seed-*`; files the fuzzer adds (and regression inputs, `crash-*`) sit next
to them and are left alone. The input formats are described in
host/src/fuzz.rs."""
import base64, hashlib, hmac, json, os, re, urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def toml_string(text):
    return json.dumps(text)  # a JSON string is a TOML basic string


def request(first, secrets, now, uri, headers, body):
    """The `verify` target's input: a `[verify]` table, `---`, the request.
    `first` is the scheme and its options as `key=value` words."""
    words = first.split(" ")
    table = [f"scheme = {toml_string(words[0])}"]
    for word in words[1:]:
        key, _, value = word.partition("=")
        table.append(f"{key} = {toml_string(value)}")
    if secrets:  # key-pair and fetched-key schemes take none
        table.append("secrets = [" + ", ".join(toml_string(s) for s in secrets) + "]")
    head = "\n".join(f"{k}: {v}" for k, v in headers.items())
    text = "\n".join(table) + f"\n---\n{now}\n{uri}\n{head}\n\n"
    return text.encode() + (body.encode() if isinstance(body, str) else body)


def mac(key, msg, algo=hashlib.sha256):
    return hmac.new(key.encode() if isinstance(key, str) else key, msg.encode() if isinstance(msg, str) else msg, algo)


vectors = json.load(open(os.path.join(ROOT, "host/src/verify/testdata/vectors.json")))["vectors"]
for i, v in enumerate(vectors):
    now = v.get("now", 1700000000)
    if v["scheme"] == "twilio":
        url = v["url"]
        base, _, query = url.partition("?")
        body = urllib.parse.urlencode(v["form"])
        headers = dict(v["headers"])
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        write("verify", f"vector-{i}-twilio-url", request(f"twilio url={base}", [v["secret"]], now, f"/myapp.php?{query}", headers, body))
        headers["Host"] = "mycompany.com"
        headers["X-Forwarded-Proto"] = "https"
        write("verify", f"vector-{i}-twilio-host", request("twilio", [v["secret"]], now, f"/myapp.php?{query}", headers, body))
        write("twilio_form", f"vector-{i}-form", body)
        write("twilio_form", f"vector-{i}-url", url)
        continue
    if "public_key" in v:  # key-pair schemes: the sender's public key, no secret
        first, secrets = f"{v['scheme']} public_key={v['public_key']}", []
    else:
        first, secrets = v["scheme"], [v["secret"]]
    write("verify", f"vector-{i}-{v['scheme']}", request(first, secrets, now, "/hooks/fuzz", v["headers"], v["body"]))

# The schemes without a published vector, signed here the way each sender does.
NOW = 1700000000
BODY = '{"id":"evt_1","type":"push","data":{"n":1}}'
secret = "whsec-not-really"
write("verify", "gitlab", request("gitlab", [secret], NOW, "/hooks/fuzz", {"X-Gitlab-Token": secret}, BODY))
write("verify", "stripe", request("stripe", [secret, "second"], NOW, "/hooks/fuzz",
      {"Stripe-Signature": f"t={NOW},v1={mac(secret, f'{NOW}.{BODY}').hexdigest()},v0=00"}, BODY))
write("verify", "stripe-tolerance", request("stripe tolerance=10m", [secret], NOW + 60, "/hooks/fuzz",
      {"Stripe-Signature": f"t={NOW},v1={mac(secret, f'{NOW}.{BODY}').hexdigest()}"}, BODY))
write("verify", "shopify", request("shopify", [secret], NOW, "/hooks/fuzz",
      {"X-Shopify-Hmac-Sha256": base64.b64encode(mac(secret, BODY).digest()).decode()}, BODY))
write("verify", "github", request("github", [secret], NOW, "/hooks/fuzz",
      {"X-Hub-Signature-256": "sha256=" + mac(secret, BODY).hexdigest()}, BODY))
write("verify", "slack", request("slack", [secret], NOW, "/hooks/fuzz",
      {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": "v0=" + mac(secret, f"v0:{NOW}:{BODY}").hexdigest()}, BODY))
write("verify", "token", request("token", [secret], NOW, "/hooks/fuzz", {"Authorization": f"Bearer {secret}"}, BODY))
write("verify", "token-header", request("token header=X-Api-Key prefix=", [secret], NOW, "/hooks/fuzz", {"X-Api-Key": secret}, BODY))
write("verify", "hmac-hex", request("hmac header=X-Signature prefix=sha256=", [secret], NOW, "/hooks/fuzz",
      {"X-Signature": "sha256=" + mac(secret, BODY).hexdigest()}, BODY))
write("verify", "hmac-base64-sha512", request("hmac header=X-Signature algorithm=sha512 encoding=base64", [secret], NOW, "/hooks/fuzz",
      {"X-Signature": base64.b64encode(mac(secret, BODY, hashlib.sha512).digest()).decode()}, BODY))
write("verify", "hmac-sha1", request("hmac header=X-Hub-Signature prefix=sha1= algorithm=sha1", [secret], NOW, "/hooks/fuzz",
      {"X-Hub-Signature": "sha1=" + mac(secret, BODY, hashlib.sha1).hexdigest()}, BODY))
key = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
msg_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
sig = base64.b64encode(mac(base64.b64decode(key), f"{msg_id}.{NOW}.{BODY}").digest()).decode()
write("verify", "standard-webhooks", request("standard-webhooks tolerance=5m", [f"whsec_{key}"], NOW, "/hooks/fuzz",
      {"webhook-id": msg_id, "webhook-timestamp": str(NOW), "webhook-signature": f"v1,AAAA v1,{sig}"}, BODY))
write("verify", "refused-twilio-json", request("twilio url=https://example.com/hooks/sms", [secret], NOW,
      "/hooks/sms?bodySHA256=" + hashlib.sha256(BODY.encode()).hexdigest(),
      {"Content-Type": "application/json", "X-Twilio-Signature": "AAAA"}, BODY))

# Issue 18's schemes, each signed as its sender does. Key pairs come from
# fixed seeds (Ed25519, P-256) or the RSA test key whose certificate and JWKS
# the `verify` target holds as already fetched (host/src/fuzz.rs).
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding

b64 = lambda data: base64.b64encode(data).decode()
b64url = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()
ed_key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))
ed_public = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
write("verify", "discord", request(f"discord public_key={ed_public.hex()}", [], NOW, "/hooks/fuzz",
      {"X-Signature-Ed25519": ed_key.sign(f"{NOW}{BODY}".encode()).hex(), "X-Signature-Timestamp": str(NOW)}, BODY))
write("verify", "standard-webhooks-v1a", request(f"standard-webhooks public_key=whpk_{b64(ed_public)}", [], NOW, "/hooks/fuzz",
      {"webhook-id": msg_id, "webhook-timestamp": str(NOW),
       "webhook-signature": f"v1,AAAA v1a,{b64(ed_key.sign(f'{msg_id}.{NOW}.{BODY}'.encode()))}"}, BODY))
twitch_id, twitch_ts = "e76c6bd4-55c9-4987-8304-da1588d8988b", "2023-11-14T22:13:20Z"  # NOW
write("verify", "twitch", request("twitch", [secret], NOW, "/hooks/fuzz",
      {"Twitch-Eventsub-Message-Id": twitch_id, "Twitch-Eventsub-Message-Timestamp": twitch_ts,
       "Twitch-Eventsub-Message-Type": "notification",
       "Twitch-Eventsub-Message-Signature": "sha256=" + mac(secret, twitch_id + twitch_ts + BODY).hexdigest()}, BODY))
write("verify", "zoom", request("zoom", [secret], NOW, "/hooks/fuzz",
      {"x-zm-request-timestamp": str(NOW), "x-zm-signature": "v0=" + mac(secret, f"v0:{NOW}:{BODY}").hexdigest()}, BODY))
write("verify", "meta", request("meta verify_token=meta-verify-token", [secret], NOW, "/hooks/fuzz",
      {"X-Hub-Signature-256": "sha256=" + mac(secret, BODY).hexdigest()}, BODY))
graph = json.dumps({"value": [{"subscriptionId": "1", "clientState": secret, "changeType": "created", "resource": "me/messages"}]})
write("verify", "graph", request("graph", [secret], NOW, "/hooks/fuzz", {"Content-Type": "application/json"}, graph))
p256_key = ec.derive_private_key(int.from_bytes(bytes([7] * 32), "big"), ec.SECP256R1())
p256_public = p256_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
p256_signature = p256_key.sign(f"{NOW}{BODY}".encode(), ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
write("verify", "sendgrid", request(f"sendgrid public_key={b64(p256_public)}", [], NOW, "/hooks/fuzz",
      {"X-Twilio-Email-Event-Webhook-Signature": b64(p256_signature),
       "X-Twilio-Email-Event-Webhook-Timestamp": str(NOW)}, BODY))
square_url = "https://example.com/hooks/square"
write("verify", "square", request(f"square url={square_url}", [secret], NOW, "/hooks/fuzz",
      {"x-square-hmacsha256-signature": b64(mac(secret, square_url + BODY).digest())}, BODY))
hubspot_url, hubspot_ms = "https://example.com/hooks/hubspot", str(NOW * 1000)
write("verify", "hubspot", request(f"hubspot url={hubspot_url}", [secret], NOW, "/hooks/fuzz",
      {"X-HubSpot-Signature-v3": b64(mac(secret, "POST" + hubspot_url + BODY + hubspot_ms).digest()),
       "X-HubSpot-Request-Timestamp": hubspot_ms}, BODY))
linear = json.dumps({"action": "create", "type": "Issue", "data": {"id": "1"}, "webhookTimestamp": NOW * 1000})
write("verify", "linear", request("linear", [secret], NOW, "/hooks/fuzz", {"Linear-Signature": mac(secret, linear).hexdigest()}, linear))
write("verify", "paddle", request("paddle", [secret], NOW, "/hooks/fuzz",
      {"Paddle-Signature": f"ts={NOW};h1=00;h1={mac(secret, f'{NOW}:{BODY}').hexdigest()}"}, BODY))
mailgun_token = hashlib.sha256(BODY.encode()).hexdigest()[:50]
mailgun = json.dumps({"signature": {"timestamp": str(NOW), "token": mailgun_token,
                                    "signature": mac(secret, f"{NOW}{mailgun_token}").hexdigest()},
                      "event-data": json.loads(BODY)})
write("verify", "mailgun", request("mailgun", [secret], NOW, "/hooks/fuzz", {"Content-Type": "application/json"}, mailgun))

# SNS and Pub/Sub sign with the RSA test key, after its certificate's notBefore.
LATER = 1800000000
rsa_key = serialization.load_pem_private_key(open(os.path.join(ROOT, "host/src/verify/testdata/sns-test-key.pem"), "rb").read(), None)
rsa_sign = lambda data: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
sns = {"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
       "TopicArn": "arn:aws:sns:us-east-1:123456789012:hookhost", "Subject": "fuzz", "Message": BODY,
       "Timestamp": "2027-01-15T08:00:00.000Z", "SignatureVersion": "2",
       "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-hookhost-test.pem"}
canonical = "".join(f"{k}\n{sns[k]}\n" for k in ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"])
sns["Signature"] = b64(rsa_sign(canonical.encode()))
write("verify", "sns", request("sns", [], LATER, "/hooks/fuzz",
      {"x-amz-sns-message-type": "Notification", "Content-Type": "text/plain; charset=UTF-8"}, json.dumps(sns)))
audience = "https://hooks.example.com/hooks/push"
jwt_head = b64url(json.dumps({"alg": "RS256", "kid": "hookhost-test", "typ": "JWT"}).encode())
jwt_claims = b64url(json.dumps({"aud": audience, "iss": "https://accounts.google.com", "iat": LATER, "exp": LATER + 3600,
                                "email": "pusher@project.iam.gserviceaccount.com", "email_verified": True}).encode())
jwt = f"{jwt_head}.{jwt_claims}.{b64url(rsa_sign(f'{jwt_head}.{jwt_claims}'.encode()))}"
push = json.dumps({"message": {"data": b64(BODY.encode()), "messageId": "1"}, "subscription": "projects/p/subscriptions/s"})
write("verify", "pubsub", request(f"pubsub audience={audience} email=pusher@project.iam.gserviceaccount.com", [], LATER,
      "/hooks/fuzz", {"Authorization": f"Bearer {jwt}", "Content-Type": "application/json"}, push))

# Manifests: the examples, the reference in docs/operating.md, a few more.
for folder in sorted(os.listdir(os.path.join(ROOT, "plugins"))):
    path = os.path.join(ROOT, "plugins", folder, folder + ".toml")
    if os.path.exists(path):
        write("manifest", f"example-{folder}", open(path).read().replace("file:", "env:"))
operating = open(os.path.join(ROOT, "docs/operating.md")).read()
blocks = re.findall(r"```toml\n(.*?)```", operating, re.S)
for i, block in enumerate(blocks):
    target = "manifest" if ("route" in block or "[limits]" in block or "[verify]" in block) else "host_toml"
    write(target, f"operating-{i}", block.replace("file:", "env:"))
write("manifest", "queue", 'route = "/hooks/q"\nmode = "queue"\n[retry]\nmax_attempts = 3\nbase = "10ms"\nmax = "1s"\n[queue]\nconcurrency = 2\n')
write("manifest", "hmac", 'route = "/hooks/h"\n[verify]\nscheme = "hmac"\nsecrets = ["a", "env:B"]\nheader = "X-Sig"\nprefix = "sha256="\nalgorithm = "sha512"\nencoding = "base64"\n')
write("manifest", "kv-instance", '[kv]\nmax_key = "1KiB"\nmax_value = "1MiB"\nmax_total = "2MiB"\n[instance]\nreuse = true\n[ingress]\nrate = "5/10s"\nrate_per_ip = "1/s"\nallow = ["10.0.0.0/8"]\n')

write("host_toml", "basic", 'listen = "127.0.0.1:8080"\nplugins = "./plugins"\ndata = "./data"\nmax_body = "4MiB"\n')
write("host_toml", "admin", 'admin = "127.0.0.1:9090"\nadmin_token = "env:TOKEN"\ntrusted_proxy = ["10.0.0.0/8", "::1"]\nlog_format = "json"\n')
write("host_toml", "tls", 'tls_cert = "cert.pem"\ntls_key = "key.pem"\nshutdown_grace = "5s"\nheader_timeout = "2s"\nbody_timeout = "3s"\nmax_connections = 100\n')
write("host_toml", "numbers", 'max_concurrency = 4\nspare_instances = 0\ndedupe_window = "1h"\nretention = "7d"\nreload_debounce = "50ms"\npoll = "1s"\n')

for name, text in {
    "filters": "route=%2Fhooks%2Fa+b&status=&status=dead&limit=5",
    "cursor": "status=done&route=/hooks/b&after=01890f5e-0000-7000-8000-000000000000&limit=100",
    "bad-escape": "route=%zz&status=%",
    "utf8": "route=%E2%82%AC&x=%C3",
}.items():
    write("admin_query", name, text)

for name, text in {
    "form": "Body=Hello+World%21&From=%2B14158675309&To=%2B1&Body=again&Empty=&NoValue",
    "bad-escapes": "a=%&b=%4&c=%zz&%=%%",
    "url-port": "https://example.com:443/hooks/sms",
    "url-query": "http://example.com/hooks/sms?bodySHA256=abcd",
}.items():
    write("twilio_form", name, text)


def response(status, headers, body):
    head = "".join(f"{k}: {v}\n" for k, v in headers)
    return status.to_bytes(2, "big") + head.encode() + b"\n" + body


write("guest_response", "ok", response(200, [("content-type", "application/json")], b'{"ok":true}'))
write("guest_response", "reserved", response(201, [("Content-Length", "9"), ("connection", "close"), ("x-hookhost-delivery", "mine"), ("X-A", "1"), ("X-A", "2")], b"created"))
write("guest_response", "bad-headers", response(599, [("bad name", "v"), ("x-ok", "line\rbreak"), ("", "")], b""))
write("guest_response", "interim", response(101, [("upgrade", "websocket")], b""))
write("guest_response", "out-of-range", response(600, [], b"x"))
