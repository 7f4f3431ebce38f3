from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    AC: _ClassVar[Verdict]
    WA: _ClassVar[Verdict]
    TLE: _ClassVar[Verdict]
    MLE: _ClassVar[Verdict]
    RE: _ClassVar[Verdict]
    CE: _ClassVar[Verdict]
    OLE: _ClassVar[Verdict]
    PE: _ClassVar[Verdict]
    SE: _ClassVar[Verdict]
    SKIPPED: _ClassVar[Verdict]

class ProblemKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROBLEM_KIND_UNSPECIFIED: _ClassVar[ProblemKind]
    STDIN: _ClassVar[ProblemKind]
    FUNCTIONAL: _ClassVar[ProblemKind]
VERDICT_UNSPECIFIED: Verdict
AC: Verdict
WA: Verdict
TLE: Verdict
MLE: Verdict
RE: Verdict
CE: Verdict
OLE: Verdict
PE: Verdict
SE: Verdict
SKIPPED: Verdict
PROBLEM_KIND_UNSPECIFIED: ProblemKind
STDIN: ProblemKind
FUNCTIONAL: ProblemKind

class TestCase(_message.Message):
    __slots__ = ("input", "output")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    input: bytes
    output: bytes
    def __init__(self, input: _Optional[bytes] = ..., output: _Optional[bytes] = ...) -> None: ...

class TestSet(_message.Message):
    __slots__ = ("tests",)
    TESTS_FIELD_NUMBER: _ClassVar[int]
    tests: _containers.RepeatedCompositeFieldContainer[TestCase]
    def __init__(self, tests: _Optional[_Iterable[_Union[TestCase, _Mapping]]] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("time_limit_s", "wall_limit_s", "memory_limit_mb", "output_limit_bytes", "max_processes", "file_size_limit_bytes", "max_open_files")
    TIME_LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    WALL_LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_MB_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PROCESSES_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_OPEN_FILES_FIELD_NUMBER: _ClassVar[int]
    time_limit_s: float
    wall_limit_s: float
    memory_limit_mb: int
    output_limit_bytes: int
    max_processes: int
    file_size_limit_bytes: int
    max_open_files: int
    def __init__(self, time_limit_s: _Optional[float] = ..., wall_limit_s: _Optional[float] = ..., memory_limit_mb: _Optional[int] = ..., output_limit_bytes: _Optional[int] = ..., max_processes: _Optional[int] = ..., file_size_limit_bytes: _Optional[int] = ..., max_open_files: _Optional[int] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("mode", "abs_epsilon", "rel_epsilon", "checker", "results_as_data")
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MODE_UNSPECIFIED: _ClassVar[Comparison.Mode]
        LCB: _ClassVar[Comparison.Mode]
        EXACT: _ClassVar[Comparison.Mode]
        TOKENS: _ClassVar[Comparison.Mode]
        FLOAT: _ClassVar[Comparison.Mode]
        CHECKER: _ClassVar[Comparison.Mode]
        OPEN_R1: _ClassVar[Comparison.Mode]
        LCB_PROCESS: _ClassVar[Comparison.Mode]
    MODE_UNSPECIFIED: Comparison.Mode
    LCB: Comparison.Mode
    EXACT: Comparison.Mode
    TOKENS: Comparison.Mode
    FLOAT: Comparison.Mode
    CHECKER: Comparison.Mode
    OPEN_R1: Comparison.Mode
    LCB_PROCESS: Comparison.Mode
    MODE_FIELD_NUMBER: _ClassVar[int]
    ABS_EPSILON_FIELD_NUMBER: _ClassVar[int]
    REL_EPSILON_FIELD_NUMBER: _ClassVar[int]
    CHECKER_FIELD_NUMBER: _ClassVar[int]
    RESULTS_AS_DATA_FIELD_NUMBER: _ClassVar[int]
    mode: Comparison.Mode
    abs_epsilon: float
    rel_epsilon: float
    checker: Checker
    results_as_data: bool
    def __init__(self, mode: _Optional[_Union[Comparison.Mode, str]] = ..., abs_epsilon: _Optional[float] = ..., rel_epsilon: _Optional[float] = ..., checker: _Optional[_Union[Checker, _Mapping]] = ..., results_as_data: _Optional[bool] = ...) -> None: ...

class Checker(_message.Message):
    __slots__ = ("language", "source", "files", "convention")
    class Convention(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TESTLIB: _ClassVar[Checker.Convention]
        OPEN_R1: _ClassVar[Checker.Convention]
    TESTLIB: Checker.Convention
    OPEN_R1: Checker.Convention
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    CONVENTION_FIELD_NUMBER: _ClassVar[int]
    language: str
    source: str
    files: _containers.RepeatedCompositeFieldContainer[File]
    convention: Checker.Convention
    def __init__(self, language: _Optional[str] = ..., source: _Optional[str] = ..., files: _Optional[_Iterable[_Union[File, _Mapping]]] = ..., convention: _Optional[_Union[Checker.Convention, str]] = ...) -> None: ...

class File(_message.Message):
    __slots__ = ("name", "content")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: bytes
    def __init__(self, name: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class FileIO(_message.Message):
    __slots__ = ("input_name", "output_name")
    INPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    input_name: str
    output_name: str
    def __init__(self, input_name: _Optional[str] = ..., output_name: _Optional[str] = ...) -> None: ...

class GradeRequest(_message.Message):
    __slots__ = ("request_id", "language", "source", "test_set", "test_set_digest", "kind", "func_name", "limits", "comparison", "stop_on_first_failure", "file_io", "interactor")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    TEST_SET_DIGEST_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FUNC_NAME_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    STOP_ON_FIRST_FAILURE_FIELD_NUMBER: _ClassVar[int]
    FILE_IO_FIELD_NUMBER: _ClassVar[int]
    INTERACTOR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    language: str
    source: str
    test_set: TestSet
    test_set_digest: str
    kind: ProblemKind
    func_name: str
    limits: Limits
    comparison: Comparison
    stop_on_first_failure: bool
    file_io: FileIO
    interactor: Checker
    def __init__(self, request_id: _Optional[str] = ..., language: _Optional[str] = ..., source: _Optional[str] = ..., test_set: _Optional[_Union[TestSet, _Mapping]] = ..., test_set_digest: _Optional[str] = ..., kind: _Optional[_Union[ProblemKind, str]] = ..., func_name: _Optional[str] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., comparison: _Optional[_Union[Comparison, _Mapping]] = ..., stop_on_first_failure: _Optional[bool] = ..., file_io: _Optional[_Union[FileIO, _Mapping]] = ..., interactor: _Optional[_Union[Checker, _Mapping]] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("cpu_time_s", "wall_time_s", "peak_memory_kb")
    CPU_TIME_S_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_S_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_KB_FIELD_NUMBER: _ClassVar[int]
    cpu_time_s: float
    wall_time_s: float
    peak_memory_kb: int
    def __init__(self, cpu_time_s: _Optional[float] = ..., wall_time_s: _Optional[float] = ..., peak_memory_kb: _Optional[int] = ...) -> None: ...

class ExitStatus(_message.Message):
    __slots__ = ("exit_code", "signal")
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    exit_code: int
    signal: int
    def __init__(self, exit_code: _Optional[int] = ..., signal: _Optional[int] = ...) -> None: ...

class TestResult(_message.Message):
    __slots__ = ("index", "verdict", "usage", "exit", "message", "points")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    EXIT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    index: int
    verdict: Verdict
    usage: Usage
    exit: ExitStatus
    message: str
    points: float
    def __init__(self, index: _Optional[int] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., exit: _Optional[_Union[ExitStatus, _Mapping]] = ..., message: _Optional[str] = ..., points: _Optional[float] = ...) -> None: ...

class FailureExcerpt(_message.Message):
    __slots__ = ("test_index", "input", "stdout", "stderr", "expected", "truncated")
    TEST_INDEX_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    test_index: int
    input: bytes
    stdout: bytes
    stderr: bytes
    expected: bytes
    truncated: bool
    def __init__(self, test_index: _Optional[int] = ..., input: _Optional[bytes] = ..., stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., expected: _Optional[bytes] = ..., truncated: _Optional[bool] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("queue_s", "jail_start_s", "compile_s", "run_s", "total_s")
    QUEUE_S_FIELD_NUMBER: _ClassVar[int]
    JAIL_START_S_FIELD_NUMBER: _ClassVar[int]
    COMPILE_S_FIELD_NUMBER: _ClassVar[int]
    RUN_S_FIELD_NUMBER: _ClassVar[int]
    TOTAL_S_FIELD_NUMBER: _ClassVar[int]
    queue_s: float
    jail_start_s: float
    compile_s: float
    run_s: float
    total_s: float
    def __init__(self, queue_s: _Optional[float] = ..., jail_start_s: _Optional[float] = ..., compile_s: _Optional[float] = ..., run_s: _Optional[float] = ..., total_s: _Optional[float] = ...) -> None: ...

class GradeResponse(_message.Message):
    __slots__ = ("request_id", "verdict", "tests", "first_failure", "compile_log", "timings", "passed", "total", "message", "test_set_digest", "error", "compile_usage")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_FAILURE_FIELD_NUMBER: _ClassVar[int]
    COMPILE_LOG_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TEST_SET_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    COMPILE_USAGE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    verdict: Verdict
    tests: _containers.RepeatedCompositeFieldContainer[TestResult]
    first_failure: FailureExcerpt
    compile_log: str
    timings: Timings
    passed: int
    total: int
    message: str
    test_set_digest: str
    error: RequestError
    compile_usage: Usage
    def __init__(self, request_id: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., tests: _Optional[_Iterable[_Union[TestResult, _Mapping]]] = ..., first_failure: _Optional[_Union[FailureExcerpt, _Mapping]] = ..., compile_log: _Optional[str] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., passed: _Optional[int] = ..., total: _Optional[int] = ..., message: _Optional[str] = ..., test_set_digest: _Optional[str] = ..., error: _Optional[_Union[RequestError, _Mapping]] = ..., compile_usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class RequestError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("request_id", "language", "source", "stdin", "limits", "files", "fetch_files")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    FETCH_FILES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    language: str
    source: str
    stdin: bytes
    limits: Limits
    files: _containers.RepeatedCompositeFieldContainer[File]
    fetch_files: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[str] = ..., language: _Optional[str] = ..., source: _Optional[str] = ..., stdin: _Optional[bytes] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., files: _Optional[_Iterable[_Union[File, _Mapping]]] = ..., fetch_files: _Optional[_Iterable[str]] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("request_id", "verdict", "stdout", "stderr", "exit", "usage", "compile_log", "message", "timings", "compile_usage", "files")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    EXIT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COMPILE_LOG_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    COMPILE_USAGE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    verdict: Verdict
    stdout: bytes
    stderr: bytes
    exit: ExitStatus
    usage: Usage
    compile_log: str
    message: str
    timings: Timings
    compile_usage: Usage
    files: _containers.RepeatedCompositeFieldContainer[File]
    def __init__(self, request_id: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., exit: _Optional[_Union[ExitStatus, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., compile_log: _Optional[str] = ..., message: _Optional[str] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., compile_usage: _Optional[_Union[Usage, _Mapping]] = ..., files: _Optional[_Iterable[_Union[File, _Mapping]]] = ...) -> None: ...

class PutTestSetRequest(_message.Message):
    __slots__ = ("test_set",)
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    test_set: TestSet
    def __init__(self, test_set: _Optional[_Union[TestSet, _Mapping]] = ...) -> None: ...

class PutTestSetResponse(_message.Message):
    __slots__ = ("digest",)
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    digest: str
    def __init__(self, digest: _Optional[str] = ...) -> None: ...

class HasTestSetRequest(_message.Message):
    __slots__ = ("digest",)
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    digest: str
    def __init__(self, digest: _Optional[str] = ...) -> None: ...

class HasTestSetResponse(_message.Message):
    __slots__ = ("present",)
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    present: bool
    def __init__(self, present: _Optional[bool] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Language(_message.Message):
    __slots__ = ("name", "version", "compile_command", "run_command", "source_file", "modules")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COMPILE_COMMAND_FIELD_NUMBER: _ClassVar[int]
    RUN_COMMAND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FILE_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    compile_command: str
    run_command: str
    source_file: str
    modules: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., compile_command: _Optional[str] = ..., run_command: _Optional[str] = ..., source_file: _Optional[str] = ..., modules: _Optional[_Iterable[str]] = ...) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("languages", "default_limits", "max_limits", "capacity", "max_queue", "max_source_bytes", "version", "in_flight", "isolation", "ready_jails")
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_LIMITS_FIELD_NUMBER: _ClassVar[int]
    MAX_LIMITS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_FIELD_NUMBER: _ClassVar[int]
    MAX_SOURCE_BYTES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    READY_JAILS_FIELD_NUMBER: _ClassVar[int]
    languages: _containers.RepeatedCompositeFieldContainer[Language]
    default_limits: Limits
    max_limits: Limits
    capacity: int
    max_queue: int
    max_source_bytes: int
    version: str
    in_flight: int
    isolation: str
    ready_jails: _containers.RepeatedCompositeFieldContainer[ReadyJails]
    def __init__(self, languages: _Optional[_Iterable[_Union[Language, _Mapping]]] = ..., default_limits: _Optional[_Union[Limits, _Mapping]] = ..., max_limits: _Optional[_Union[Limits, _Mapping]] = ..., capacity: _Optional[int] = ..., max_queue: _Optional[int] = ..., max_source_bytes: _Optional[int] = ..., version: _Optional[str] = ..., in_flight: _Optional[int] = ..., isolation: _Optional[str] = ..., ready_jails: _Optional[_Iterable[_Union[ReadyJails, _Mapping]]] = ...) -> None: ...

class ReadyJails(_message.Message):
    __slots__ = ("language", "ready", "started", "taken", "missed", "closed_idle")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    TAKEN_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    CLOSED_IDLE_FIELD_NUMBER: _ClassVar[int]
    language: str
    ready: int
    started: int
    taken: int
    missed: int
    closed_idle: int
    def __init__(self, language: _Optional[str] = ..., ready: _Optional[int] = ..., started: _Optional[int] = ..., taken: _Optional[int] = ..., missed: _Optional[int] = ..., closed_idle: _Optional[int] = ...) -> None: ...
