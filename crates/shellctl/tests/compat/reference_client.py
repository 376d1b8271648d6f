"""Drives a shellctl server with the reference's own Python SDK.

Usage: reference_client.py BASE_URL TOKEN
Exits non-zero (with a traceback) on the first mismatch; prints
"compat ok" at the end.
"""

import asyncio
import sys

from shell_session_manager.shellctl.client.sdk import ShellctlClient, ShellctlClientError


async def main(base_url: str, token: str) -> None:
    async with ShellctlClient(base_url, token=token, idle_flush_seconds=0.2) as client:
        assert await client.healthz() == {"status": "ok"}

        ran = await client.run("echo \"hi $WHO\"; exit 3", env={"WHO": "ref sdk \U0001F642"})
        assert ran.done and ran.status == "exited" and ran.exit_code == 3, ran
        assert ran.output == "hi ref sdk \U0001F642\n", ran

        job = await client.run("printf 'Name: '; read n; echo \"hello $n\"; read _", timeout=30)
        assert not job.done and job.output == "Name: ", job
        typed = await client.input(job.job_id, "bob\n", offset=job.offset)
        assert typed.output == "bob\nhello bob\n", typed
        waited = await client.wait(job.job_id, offset=0, timeout=1)
        assert waited.output == "Name: bob\nhello bob\n" and not waited.done, waited

        status = await client.status(job.job_id)
        assert status.status == "running" and status.offset == typed.offset, status
        listed = await client.list_jobs(limit=10)
        assert [j.job_id for j in listed][:2] == [job.job_id, ran.job_id], listed
        running = await client.list_jobs(status="running")
        assert [j.job_id for j in running] == [job.job_id], running

        tail = await client.tail(job.job_id)
        assert tail.output.endswith("hello bob\n") and not tail.truncated, tail

        stopped = await client.terminate(job.job_id, grace_seconds=5)
        assert stopped.status == "terminated" and stopped.done, stopped
        deleted = await client.delete(job.job_id)
        assert deleted.job_id == job.job_id and deleted.deleted, deleted

        try:
            await client.status(job.job_id)
        except ShellctlClientError as err:
            assert err.status_code == 404 and err.code == "job_not_found", err
        else:
            raise AssertionError("status of a deleted job succeeded")

        try:
            await client.run("true", timeout=0.0001, cwd="/no/such/dir")
        except ShellctlClientError as err:
            assert err.status_code == 400 and err.code == "invalid_cwd", err
        else:
            raise AssertionError("run with a missing cwd succeeded")
    print("compat ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
