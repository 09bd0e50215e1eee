"""The isolation boundary: student code runs in a sandboxed worker process, and nowhere else.

Threat model. A submission is arbitrary Python, written by someone who may want a better grade
than the code earns, or to harm another student's grade. The grader (the trusted pytest with
the hidden tests, the reference and the comparisons) never imports it. Each layer below names
what it stops and the red-team tests (tests/redteam/, tests/test_worker.py) that prove it.

1. Changing the verdict: patching numpy, builtins or pytest, returning objects that lie
   (__eq__, ndarray subclasses), printing or writing fake results, a submitted conftest.py.
   The tests run in another process (proxy.py is all they see of the submission); values
   cross as .npy bytes of numeric dtypes and JSON, never pickles (protocol.py); any other
   object stays in the worker as a handle, and equality on it is identity.
   -> test_redteam_hw1.py and test_redteam_all.py: patch_*, eq_always_true, ndarray_subclass,
      print_fake_results, submitted_conftest, test_overwriting_results_json_has_no_effect;
      test_worker.py: test_liar_is_not_equal, test_subclass_comes_back_plain.
2. Reading the answers: the reference, the hidden tests, another checkout of the course, data
   a test scores against. The worker's root is a private read-only tmpfs holding only the
   system, the interpreter and its own scratch copy of the graded files; named package data is
   covered (namespaces.py). Imports of the engine or solutions are refused (worker.py).
   -> read_hidden_tests_and_solutions, import_solutions_package, read_solutions_by_walking,
      test_walking_root_finds_no_other_checkout, test_hw5_predict_cannot_look_up_labels,
      test_worker.py::test_private_root_holds_only_the_system_the_interpreter_and_scratch.
3. The network: an empty network namespace (and IPC namespace). -> open_a_socket.
4. Exhausting the machine: memory, CPU, disk, processes, output. rlimits (limits.py), a
   deadline on every call, a test and a submission, capped output. -> allocate_50_gb,
   fork_bomb, write_10_gb_file, infinite_loop_in_call, test_correct_submission_that_prints_*.
5. Crashing or ending the worker (exit, segfault, a signal, KeyboardInterrupt): that test
   fails with the reason, the next gets a new worker, the rest is graded. -> sys_exit_in_call,
   os_exit_in_call, ctypes_segfault_in_call, test_killing_the_import_scores_zero.
6. Reaching another submission graded at the same time: signals, ptrace, /proc/PID/{mem,
   environ,cwd}, the per-user process limit. Each worker runs as a uid of its own from a pool
   (uids.py) and as PID 1 of a PID namespace of its own, with its own /proc (process.py).
   -> test_isolation.py::test_one_submission_cannot_touch_another,
      test_worker.py::test_worker_gets_its_own_pid_namespace.
7. Swamping the grader with what it sends back: a huge array, ten million strings, a frame
   written by hand. The worker refuses to send past the budgets, and the trusted side reads
   within them (protocol.py: limits.reply_mb of arrays, HEADER_LIMIT of plain data).
   -> test_worker.py::test_values_too_large_fail_with_a_clear_message;
      benchmarks/bench_hostile_archives.py measures the grader's memory.
8. Slowing later tests: threads or processes left running. A worker that has any after a
   test is replaced before the next (worker.py "replace", connection.py).
   -> test_worker.py: test_no_thread_of_the_last_test, test_no_process_of_the_last_test.
9. Gaining privileges: no_new_privs, no capabilities, an unprivileged uid.

Faults are not grades. A worker killed from outside its namespace (an operator, the OOM
killer) cannot be the submission's doing, since PID 1 cannot be killed from inside: the
test is graded again in a fresh worker, and a second loss gives no grade at all but an
infrastructure error that a rerun grades (connection.py, runner.py).
-> test_worker.py: test_a_worker_killed_from_outside_*, test_a_test_process_killed_from_outside_*.

Out of scope: the archive a submission comes in (submission.py reads it within flat memory;
tests/redteam/test_archives.py), kernel exploits, and timing side channels.

Modules: process (start, stop, probe what this machine allows), namespaces (the private root
and its mounts), limits (rlimits; which deaths are the worker's own), uids (the uid pool),
protocol (the wire format), worker (the code that runs in the worker, loaded as source text),
connection (the grading side: a worker's pipes, deadlines and the pool), cuda (the NVIDIA device
nodes and driver libraries a GPU worker's private root must reach; deepgrade doctor reads it too).
"""
from autograder.sandbox.namespaces import package_paths
from autograder.sandbox.process import (
    PROTECTIONS, SandboxSpec, Started, active_protections, minimal_env, probe_protections, sandbox_note, start, stop,
)

__all__ = ["PROTECTIONS", "SandboxSpec", "Started", "active_protections", "minimal_env", "package_paths",
           "probe_protections", "sandbox_note", "start", "stop"]
