"""Bulk API 2.0 routes of the Salesforce sandbox: query jobs (UploadComplete → InProgress → JobComplete/Failed over
polls, results in chunks of record-id order) and ingest jobs (CSV upload, per-record results, failed jobs).

Bulk API 2.0 and Bulk API Developer Guide: https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/
api_asynch/ (query jobs: "Understanding Bulk API 2.0 Query"; ingest: "Bulk API 2.0 Ingest").
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from leadflow.sandbox.faults import Fault
from leadflow.sandbox.salesforce_org import _number
from leadflow.sandbox.salesforce_rules import rec_err as _rec_err
from leadflow.sandbox.salesforce_schema import NUMBER_TYPES, STANDARD
from leadflow.sandbox.salesforce_soql import SoqlError, parse_sf_datetime, parse_soql, sf_datetime

if TYPE_CHECKING:
    from leadflow.sandbox.salesforce_org import Org

API_VERSION = "59.0"
DATA = f"/services/data/v{API_VERSION}"


def _err(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def register_bulk_routes(
    app: FastAPI, org: Org,
    apply: Callable[[str, str | None, dict[str, Any], bool], list[dict[str, Any]]],
    locked_ids: Callable[[Fault | None, list[str | None]], set[str | None]],
) -> None:
    """Add the /jobs/query and /jobs/ingest routes for `org`; `apply` updates one record like sObject Collections
    (errors or []), `locked_ids` says which records a "lock_row" fault locks."""
    def job_info(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def new_job(kind: str, body: dict[str, Any]) -> dict[str, Any]:
        with org.lock:
            n = org.counters.get("job", 0) + 1
            org.counters["job"] = n
        now = sf_datetime(datetime.now(UTC))
        job = {"id": f"7505e{n:010d}AAA", "operation": body.get("operation"), "object": body.get("object"),
               "createdById": "0055e0000000001AAA", "createdDate": now, "systemModstamp": now, "state": "Open",
               "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(API_VERSION),
               "lineEnding": body.get("lineEnding", "LF"), "columnDelimiter": body.get("columnDelimiter", "COMMA"),
               "jobType": "V2Query" if kind == "query" else "V2Ingest", "_kind": kind}
        org.jobs[job["id"]] = job
        return job

    # Bulk API 2.0 query jobs run asynchronously: "UploadComplete" when created, "InProgress" while running,
    # then "JobComplete" or "Failed" (with errorMessage). Bulk API 2.0 and Bulk API Developer Guide, "Get Information
    # About a Query Job" (state: UploadComplete, InProgress, Aborted, JobComplete, Failed):
    # https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_one_job.htm
    # The sandbox runs the query when the job completes (after `org.bulk_query_polls` GETs of the job info), so a
    # query that stops being valid in between (a field's access revoked) ends the job Failed.
    @app.post(f"{DATA}/jobs/query")
    async def query_job(request: Request) -> Response:
        body = await request.json()
        if body.get("operation") not in ("query", "queryAll"):
            return _err(400, "INVALIDJOB", "Invalid operation")
        try:
            # The SOQL is checked when the job is created ("Create a Query Job": an invalid query is refused).
            soql = parse_soql(body.get("query", ""), org.schema())
        except SoqlError as exc:
            return _err(400, exc.code, exc.message)
        if soql.count:
            # "Understanding Bulk API 2.0 Query", SOQL considerations: aggregate functions such as COUNT() are not
            # supported.
            return _err(400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0 query")
        job = new_job("query", body) | {"query": body["query"], "object": soql.obj, "state": "UploadComplete",
                                        "_polls": 0}
        org.jobs[job["id"]] = job
        return JSONResponse(job_info(job))

    def advance_query_job(job: dict[str, Any]) -> None:
        """One GET of the job info moves it on: UploadComplete → InProgress → ... → JobComplete/Failed."""
        if job["state"] in ("JobComplete", "Failed", "Aborted"):
            return
        job["_polls"] += 1
        if job["_polls"] < max(org.bulk_query_polls, 1):
            job["state"] = "InProgress"
            return
        try:
            # "Create a Query Job", operation: query "Returns data that hasn't been deleted or archived"; queryAll
            # "Returns records that have been deleted because of a merge or delete" (https://developer.salesforce.com/
            # docs/atlas.en-us.api_asynch.meta/api_asynch/query_create_job.htm): the Recycle Bin only for queryAll.
            soql, rows = org.run_query(job["query"], include_deleted=job.get("operation") == "queryAll")
        except SoqlError as exc:
            job.update(state="Failed", errorMessage=f"{exc.code}: {exc.message}",
                       systemModstamp=sf_datetime(datetime.now(UTC)))
            return
        # Results come in chunks whose order is not the SOQL's: Bulk API 2.0 splits a query into chunks by record
        # id (PK chunking) and ORDER BY is not honoured across them ("Understanding Bulk API 2.0 Query", SOQL
        # considerations: "Don't use ORDER BY or LIMIT, as they disable PKChunking"). The sandbox returns rows in
        # record-id order whatever the query asks for, so a client must order (and de-duplicate) locally.
        rows = sorted(rows, key=lambda r: str(r.get("Id")))
        job["_rows"] = [[_csv_value(r.get(f)) for f in soql.fields] for r in rows]
        job["_fields"] = soql.fields
        job.update(state="JobComplete", numberRecordsProcessed=len(rows),
                   systemModstamp=sf_datetime(datetime.now(UTC)))

    @app.get(DATA + "/jobs/query/{job_id}")
    async def query_job_info(request: Request, job_id: str) -> Response:
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "query":
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        fault = request.state.fault
        with org.lock:
            if fault is not None and fault.kind == "job_failed" and job["state"] not in ("JobComplete", "Aborted"):
                # A job the org gives up on (e.g. it retried a chunk more than 15 times): Failed with errorMessage.
                job.update(state="Failed", errorMessage=str((fault.detail or {}).get(
                    "message", "Retried more than 15 times")), systemModstamp=sf_datetime(datetime.now(UTC)))
            advance_query_job(job)
        return JSONResponse(job_info(job) | {"retries": 0, "totalProcessingTime": 1})

    @app.patch(DATA + "/jobs/query/{job_id}")
    async def query_job_abort(request: Request, job_id: str) -> Response:
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "query":
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        if (await request.json()).get("state") != "Aborted" or job["state"] in ("JobComplete", "Failed"):
            return _err(400, "INVALIDJOBSTATE", f"Cannot change state from {job['state']}")
        job["state"] = "Aborted"
        return JSONResponse(job_info(job))

    @app.get(DATA + "/jobs/query/{job_id}/results")
    async def query_results(job_id: str, maxRecords: int = 50_000, locator: str = "") -> Response:  # noqa: N803
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "query":
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        if job["state"] != "JobComplete":
            # "Get Results for a Query Job": results exist only once the job's state is JobComplete; before that
            # the request is refused (HTTP 400, errorCode INVALIDJOBSTATE).
            return _err(400, "INVALIDJOBSTATE", f"Job is not in a state to retrieve results: {job['state']}")
        try:
            start = int(base64.b64decode(locator).decode()) if locator else 0
        except ValueError:
            return _err(400, "INVALID_LOCATOR", "invalid locator")
        rows = job["_rows"][start: start + maxRecords]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(job["_fields"])
        writer.writerows(rows)
        end = start + len(rows)
        next_locator = base64.b64encode(str(end).encode()).decode() if end < len(job["_rows"]) else "null"
        return Response(buffer.getvalue(), media_type="text/csv",
                        headers={"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(rows))})

    @app.post(f"{DATA}/jobs/ingest")
    async def ingest_job(request: Request) -> Response:
        body = await request.json()
        if body.get("object") not in STANDARD or body.get("operation") not in ("insert", "update", "delete"):
            return _err(400, "INVALIDJOB", "Unsupported object or operation")
        job = new_job("ingest", body)
        job["_csv"] = ""
        job["_fault"] = None
        return JSONResponse(job_info(job))

    @app.put(DATA + "/jobs/ingest/{job_id}/batches")
    async def ingest_upload(request: Request, job_id: str) -> Response:
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "ingest" or job["state"] != "Open":
            return _err(400, "INVALIDJOB", "Job is not open for upload")
        job["_csv"] += (await request.body()).decode("utf-8")
        return Response(status_code=201)

    @app.patch(DATA + "/jobs/ingest/{job_id}")
    async def ingest_state(request: Request, job_id: str) -> Response:
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "ingest":
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        state = (await request.json()).get("state")
        if state == "Aborted":
            job["state"] = "Aborted"
        elif state == "UploadComplete" and job["state"] == "Open":
            run_ingest(job, request.state.fault)
        else:
            return _err(400, "INVALIDJOB", f"Cannot change state from {job['state']} to {state}")
        return JSONResponse(job_info(job) | {"state": "UploadComplete" if state != "Aborted" else "Aborted"})

    def run_ingest(job: dict[str, Any], fault: Fault | None) -> None:
        reader = csv.DictReader(io.StringIO(job["_csv"]))
        rows = list(reader)
        obj, operation = job["object"], job["operation"]
        ids = [r.get("Id") for r in rows]
        locked = locked_ids(fault, ids)
        ok: list[tuple[str, bool, dict[str, str]]] = []
        failed: list[tuple[str, str, dict[str, str]]] = []
        schema = org.schema()
        unknown = [n for n in reader.fieldnames or [] if n.lower() not in {k.lower() for k in schema[obj]}]
        if unknown:
            # A header naming a field the user cannot see fails the whole job: Bulk API 2.0 and Bulk API Developer
            # Guide, "Errors" / "Prepare CSV Files" ("InvalidBatch : Field name not found : <field>"), state Failed.
            job.update(state="Failed", errorMessage=f"InvalidBatch : Field name not found : {unknown[0]}",
                       numberRecordsProcessed=0, numberRecordsFailed=0, systemModstamp=sf_datetime(datetime.now(UTC)))
            job["_ok"], job["_failed"], job["_fields"] = [], [], reader.fieldnames or []
            return
        with org.lock:
            for row in rows:
                record_id = row.get("Id") or None
                values: dict[str, Any] = {}
                bad: list[dict[str, Any]] = []
                for name, raw in row.items():
                    if name == "Id":
                        continue
                    if raw == "":  # Bulk API: empty means "leave as it is"; #N/A clears
                        continue
                    ftype = schema[obj].get(next((k for k in schema[obj] if k.lower() == name.lower()), ""), "")
                    if raw == "#N/A":
                        values[name] = None
                    elif ftype == "boolean":
                        if raw.lower() not in ("true", "false", "1", "0"):
                            bad.append(_rec_err("INVALID_TYPE", f"{name}: value not of required type: {raw}",
                                                [name]))
                            continue
                        values[name] = raw.lower() in ("true", "1")
                    elif ftype == "datetime" and parse_sf_datetime(raw) is None:
                        bad.append(_rec_err("INVALID_TYPE_ON_FIELD_IN_RECORD",
                                            f"{name}: value not of required type: {raw}", [name]))
                        continue
                    elif ftype in NUMBER_TYPES:
                        number = _number(raw, ftype)
                        if number is None:
                            bad.append(_rec_err("INVALID_TYPE_ON_FIELD_IN_RECORD",
                                                f"{name}: value not of required type: {raw}", [name]))
                            continue
                        values[name] = number
                    else:
                        values[name] = raw
                if operation == "delete":
                    errors = [] if record_id and org.delete(obj, record_id) else [
                        _rec_err("ENTITY_IS_DELETED", "entity is deleted", [])]
                    new_id = record_id or ""
                elif operation == "insert":
                    clean, errors = org.validate(obj, values, create=True)
                    errors = bad + errors
                    new_id = "" if errors else org.put(obj, clean)
                else:
                    errors = bad or apply(obj, record_id, values, record_id in locked)
                    new_id = record_id or ""
                if errors:
                    e = errors[0]
                    failed.append((record_id or "", f"{e['statusCode']}:{e['message']}:{','.join(e['fields'])}--",
                                   row))
                else:
                    ok.append((new_id, operation == "insert", row))
        job["_ok"], job["_failed"], job["_fields"] = ok, failed, reader.fieldnames or []
        job.update(state="JobComplete", numberRecordsProcessed=len(rows), numberRecordsFailed=len(failed),
                   systemModstamp=sf_datetime(datetime.now(UTC)))

    @app.get(DATA + "/jobs/ingest/{job_id}")
    async def ingest_info(job_id: str) -> Response:
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "ingest":
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        return JSONResponse(job_info(job) | {"numberRecordsProcessed": job.get("numberRecordsProcessed", 0),
                                             "numberRecordsFailed": job.get("numberRecordsFailed", 0)})

    @app.get(DATA + "/jobs/ingest/{job_id}/{kind}/")
    async def ingest_results(job_id: str, kind: str) -> Response:
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "ingest":
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        fields = job.get("_fields", [])
        if kind == "successfulResults":
            writer.writerow(["sf__Id", "sf__Created", *fields])
            for record_id, created, row in job.get("_ok", []):
                writer.writerow([record_id, "true" if created else "false", *(row.get(f, "") for f in fields)])
        elif kind == "failedResults":
            writer.writerow(["sf__Id", "sf__Error", *fields])
            for record_id, error, row in job.get("_failed", []):
                writer.writerow([record_id, error, *(row.get(f, "") for f in fields)])
        elif kind == "unprocessedrecords":
            writer.writerow(fields)
        else:
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        return Response(buffer.getvalue(), media_type="text/csv")
