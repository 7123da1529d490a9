#pragma once
/// A child process for the end-to-end tests: started from an argv with its
/// stdout and stderr in one file, stopped by signal, always reaped. The
/// destructor kills whatever is still running (the child's whole process
/// group), so no child outlives a failed test; if the test binary itself is
/// killed, the child gets SIGKILL from the kernel (PR_SET_PDEATHSIG).

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace cacheproxy::e2e {

/// One spawned child. Not copyable; movable.
class Process {
public:
    /// Starts argv[0] (an absolute path; no PATH search) with argv, stdin from
    /// /dev/null, stdout and stderr appended to log_path. Throws
    /// std::runtime_error if the program cannot be started.
    Process(std::vector<std::string> argv, std::string log_path);
    ~Process();

    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    Process(Process&& other) noexcept;
    Process& operator=(Process&& other) noexcept;

    pid_t pid() const { return pid_; }
    const std::string& log_path() const { return log_path_; }
    /// The command line, for messages.
    std::string command_line() const;

    /// True while the child has not exited (reaps it if it has).
    bool running();
    /// Sends SIGTERM to the child itself (not its group).
    void terminate();
    /// Sends `sig` to the child itself (not its group), if it still runs:
    /// e.g. SIGSTOP / SIGCONT to freeze and thaw it.
    void signal(int sig);
    /// Sends SIGKILL to the child's process group and reaps it.
    void kill();
    /// Waits up to `timeout` for the child to exit. Returns its exit code, or
    /// 128+N if signal N ended it; std::nullopt if it is still running.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    /// The exit code once known (see wait_exit).
    std::optional<int> exit_code() const { return exit_code_; }

    /// The whole log file as it is now.
    std::string read_log() const;
    /// The last `max_bytes` of the log file, for failure messages.
    std::string log_tail(std::size_t max_bytes = 4000) const;

private:
    void reap_nohang();
    void kill_group_and_reap();

    std::vector<std::string> argv_;
    std::string log_path_;
    pid_t pid_ = -1;
    std::optional<int> exit_code_;
};

/// Reads a whole file ("" if it cannot be opened).
std::string read_file(const std::string& path);

}  // namespace cacheproxy::e2e
