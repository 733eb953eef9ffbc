"""A pool of fuzz worker processes (``tests.fuzz.worker``) with a time limit per task.

A task that runs past ``timeout`` seconds, or whose worker dies, gets an error result (``"hang"`` or ``"worker"``)
instead of a result; its worker is killed (its own process group: the worker and the compilers and programs it
started) and replaced. Results come back as tasks finish; callers sort them by task id, so what a run reports
does not depend on the scheduling.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _Worker:
    proc: subprocess.Popen
    buf: bytes = b""
    task: dict | None = None
    deadline: float = 0.0
    log: IO[bytes] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Done:
    task: dict
    result: object | None  # the worker's result, or None when ``error`` is set
    error: str = ""  # "hang: ..." or "worker: ..."


class Pool:
    def __init__(self, jobs: int, timeout: float, log_dir: Path | None = None) -> None:
        self.jobs = max(1, jobs)
        self.timeout = timeout
        self.log_dir = log_dir
        self.started = 0

    def _spawn(self) -> _Worker:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        log = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_dir / f"worker-{self.started}.log", "wb")  # noqa: SIM115 - closed in _stop
        self.started += 1
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        return _Worker(proc, log=log)

    @staticmethod
    def _stop(w: _Worker, kill: bool) -> None:
        if kill:
            try:
                os.killpg(w.proc.pid, signal.SIGKILL)  # the worker's own session: it and its children only
            except ProcessLookupError:
                pass
        else:
            w.proc.stdin.close()
        w.proc.wait()
        w.proc.stdout.close()
        if w.log is not None:
            w.log.close()

    def run(self, tasks: Iterable[dict]) -> Iterator[Done]:
        """Run every task (each a dict with a unique ``id``); yield each as it finishes."""
        pending = iter(tasks)
        sel = selectors.DefaultSelector()
        workers: list[_Worker] = []
        busy = 0

        def assign(w: _Worker) -> bool:
            task = next(pending, None)
            if task is None:
                return False
            w.task, w.deadline = task, time.monotonic() + self.timeout
            w.proc.stdin.write((json.dumps(task) + "\n").encode())
            w.proc.stdin.flush()
            return True

        def replace(w: _Worker) -> _Worker:
            sel.unregister(w.proc.stdout)
            self._stop(w, kill=True)
            nw = self._spawn()
            sel.register(nw.proc.stdout, selectors.EVENT_READ, nw)
            workers[workers.index(w)] = nw
            return nw

        try:
            for _ in range(self.jobs):
                w = self._spawn()
                workers.append(w)
                sel.register(w.proc.stdout, selectors.EVENT_READ, w)
                busy += assign(w)
            while busy:
                wait = max(0.0, min(w.deadline for w in workers if w.task) - time.monotonic())
                for key, _ in sel.select(timeout=wait + 0.05):
                    w = key.data
                    chunk = os.read(w.proc.stdout.fileno(), 1 << 16)
                    if not chunk:  # the worker died
                        task, rc = w.task, w.proc.wait()
                        nw = replace(w)
                        if task is not None:
                            yield Done(task, None, f"worker: the worker process died (status {rc})")
                            busy -= 1
                            busy += assign(nw)
                        continue
                    w.buf += chunk
                    while b"\n" in w.buf and w.task is not None:
                        line, w.buf = w.buf.split(b"\n", 1)
                        msg = json.loads(line)
                        task, w.task = w.task, None
                        busy -= 1
                        yield Done(task, msg["result"])
                        busy += assign(w)
                now = time.monotonic()
                for w in list(workers):
                    if w.task is not None and now > w.deadline:
                        task = w.task
                        nw = replace(w)
                        yield Done(task, None, f"hang: no result after {self.timeout:.0f} s")
                        busy -= 1
                        busy += assign(nw)
        finally:
            for w in workers:
                sel.unregister(w.proc.stdout)
                self._stop(w, kill=w.task is not None)
            sel.close()


def collect(dones, keys: tuple[str, ...], progress=None) -> list[dict]:
    """The outcome dicts of a pool run, by seed: a worker's result, or for a hang or crash a "failure" that keeps
    the task's ``keys`` (model, seed, ...) and the error. ``progress`` is called with the list after each one."""
    out: list[dict] = []
    for done in dones:
        if done.error:
            res = {k: done.task[k] for k in keys}
            res.update(kind="failure", cause=done.error.split(":", 1)[0], detail=done.error)
        else:
            res = dict(done.result)
        out.append(res)
        if progress:
            progress(out)
    return sorted(out, key=lambda r: r["seed"])
