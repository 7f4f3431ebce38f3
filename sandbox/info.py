"""The Info answer, shared by the server and the embedded sandbox."""
from __future__ import annotations

from sandbox import __version__
from sandbox.v1 import sandbox_pb2 as pb
from workers.judge import Judge
from workers.limits import DEFAULT_LIMITS, MAX_LIMITS, limits_to_proto


def build_info(judge: Judge, capacity: int, max_queue: int) -> pb.InfoResponse:
    info = pb.InfoResponse(capacity=capacity, max_queue=max_queue,
                           max_source_bytes=judge.max_source_bytes, version=__version__,
                           isolation=judge.cgroup_support.describe())
    for language in sorted(set(judge.languages.values()), key=lambda lang: lang.name):
        info.languages.add(name=language.name, version=language.version,
                           compile_command=language.compile_command,
                           run_command=language.run_command,
                           source_file=language.source_file, modules=language.modules)
    for stats in judge.pool_stats():
        info.ready_jails.add(language=stats.language, ready=stats.ready, started=stats.started,
                             taken=stats.taken, missed=stats.missed,
                             closed_idle=stats.closed_idle)
    limits_to_proto(DEFAULT_LIMITS, info.default_limits)
    limits_to_proto(MAX_LIMITS, info.max_limits)
    return info
