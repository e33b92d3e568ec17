"""Push intake (`leadflow intake serve`): the HTTP service that accepts, verifies and durably records lead
notifications pushed by Salesforce (Outbound Messages), HubSpot (webhooks), Marketo (smart-campaign webhooks) and
web forms or partner portals (a signed JSON endpoint), into the state store's inbox (`leadflow.store.inbox`).

`config` the service's YAML (bind address, TLS, limits, per-source secrets by reference) and resolving its secrets;
`verify` the signature, shared-secret, timestamp and organization-id checks, pure functions; `payloads` each
source's request body read into inbox notifications (Salesforce's SOAP with a parser that refuses DTDs and
entities); `limits` the per-source rate limiter; `app` the Starlette application (size limit, rate limit, verify,
parse, record, answer); `service` starting it under uvicorn for the CLI. Processing the inbox in micro-batches is
not here: a processor claims rows through `StateStore.claim_notifications`.
"""
