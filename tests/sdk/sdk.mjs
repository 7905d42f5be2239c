// Signs and verifies webhooks with each provider's official Node SDK, for
// host/src/verify/sdk.rs: one JSON request as the only argument, one JSON
// answer on stdout. Run with the repository's node_modules (`make js-tools`).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const request = JSON.parse(process.argv[2]);

async function run(r) {
  switch (r.op) {
    case 'discord-verify': {
      const { verifyKey } = require('discord-interactions');
      return { ok: await verifyKey(r.body, r.signature, r.timestamp, r.publicKey) };
    }
    case 'standardwebhooks-sign': {
      const { Webhook } = require('standardwebhooks');
      const signature = new Webhook(r.secret).sign(r.id, new Date(r.timestamp * 1000), r.body);
      return { signature };
    }
    case 'standardwebhooks-verify': {
      const { Webhook } = require('standardwebhooks');
      try {
        new Webhook(r.secret).verify(r.body, r.headers);
        return { ok: true };
      } catch (err) {
        return { ok: false, error: String(err) };
      }
    }
    case 'sendgrid-verify': {
      const { EventWebhook } = require('@sendgrid/eventwebhook');
      const ew = new EventWebhook();
      const key = ew.convertPublicKeyToECDSA(r.publicKey);
      return { ok: ew.verifySignature(key, r.body, r.signature, r.timestamp) };
    }
    case 'hubspot-sign': {
      const { Signature } = require('@hubspot/api-client');
      const signature = Signature.getSignature(r.method, 'v3', {
        clientSecret: r.secret,
        requestBody: r.body,
        url: r.url,
        timestamp: r.timestamp,
      });
      return { signature };
    }
    case 'hubspot-verify': {
      const { Signature } = require('@hubspot/api-client');
      return {
        ok: Signature.isValid({
          method: r.method,
          signatureVersion: 'v3',
          signature: r.signature,
          clientSecret: r.secret,
          requestBody: r.body,
          url: r.url,
          timestamp: r.timestamp,
        }),
      };
    }
    case 'paddle-verify': {
      // As Paddle documents it: `paddle.webhooks`, which also sets up the
      // SDK's Node crypto runtime. The API key is never used here.
      const { Paddle } = require('@paddle/paddle-node-sdk');
      const paddle = new Paddle('pdl_sdbx_apikey_unused');
      return { ok: await paddle.webhooks.isSignatureValid(r.body, r.secret, r.signature) };
    }
    case 'linear-verify': {
      const { LinearWebhookClient } = await import('@linear/sdk/webhooks');
      try {
        return { ok: new LinearWebhookClient(r.secret).verify(Buffer.from(r.body), r.signature) };
      } catch (err) {
        return { ok: false, error: String(err) };
      }
    }
    default:
      throw new Error(`unknown op ${r.op}`);
  }
}

process.stdout.write(JSON.stringify(await run(request)));
