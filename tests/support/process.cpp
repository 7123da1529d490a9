#include "support/process.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cacheproxy::e2e {

namespace {

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

std::string errno_text(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

Process::Process(std::vector<std::string> argv, std::string log_path)
    : argv_(std::move(argv)), log_path_(std::move(log_path)) {
    if (argv_.empty()) throw std::runtime_error("Process: empty argv");

    // Everything the child needs is prepared before fork(): between fork and
    // exec only async-signal-safe calls are made (the test binary has threads).
    std::vector<char*> cargv;
    cargv.reserve(argv_.size() + 1);
    for (auto& a : argv_) cargv.push_back(a.data());
    cargv.push_back(nullptr);

    int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error(errno_text(("open " + log_path_).c_str()));
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) {
        ::close(log_fd);
        throw std::runtime_error(errno_text("open /dev/null"));
    }
    int err_pipe[2];
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        ::close(log_fd);
        ::close(null_fd);
        throw std::runtime_error(errno_text("pipe2"));
    }
    const pid_t parent = ::getpid();

    pid_t pid = ::fork();
    if (pid < 0) {
        int e = errno;
        ::close(log_fd);
        ::close(null_fd);
        ::close(err_pipe[0]);
        ::close(err_pipe[1]);
        errno = e;
        throw std::runtime_error(errno_text("fork"));
    }
    if (pid == 0) {
        // Child.
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127);  // the parent died already
        struct sigaction dfl;
        std::memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::dup2(null_fd, 0);
        ::dup2(log_fd, 1);
        ::dup2(log_fd, 2);
        ::execv(cargv[0], cargv.data());
        int e = errno;
        ssize_t ignored = ::write(err_pipe[1], &e, sizeof e);
        (void)ignored;
        ::_exit(127);
    }

    // Parent.
    ::setpgid(pid, pid);  // also from here, so the group exists before we ever signal it
    ::close(log_fd);
    ::close(null_fd);
    ::close(err_pipe[1]);
    int child_errno = 0;
    ssize_t n;
    do {
        n = ::read(err_pipe[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    ::close(err_pipe[0]);
    pid_ = pid;
    if (n == static_cast<ssize_t>(sizeof child_errno)) {
        kill_group_and_reap();
        throw std::runtime_error("cannot execute " + argv_[0] + ": " + std::strerror(child_errno));
    }
}

Process::~Process() {
    if (pid_ > 0) kill_group_and_reap();
}

Process::Process(Process&& other) noexcept
    : argv_(std::move(other.argv_)),
      log_path_(std::move(other.log_path_)),
      pid_(std::exchange(other.pid_, -1)),
      exit_code_(other.exit_code_) {}

Process& Process::operator=(Process&& other) noexcept {
    if (this != &other) {
        if (pid_ > 0) kill_group_and_reap();
        argv_ = std::move(other.argv_);
        log_path_ = std::move(other.log_path_);
        pid_ = std::exchange(other.pid_, -1);
        exit_code_ = other.exit_code_;
    }
    return *this;
}

std::string Process::command_line() const {
    std::string out;
    for (const auto& a : argv_) {
        if (!out.empty()) out += ' ';
        out += a;
    }
    return out;
}

void Process::reap_nohang() {
    if (pid_ <= 0 || exit_code_) return;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) exit_code_ = decode_status(status);
    else if (r < 0 && errno == ECHILD) exit_code_ = -1;  // someone else reaped it
}

bool Process::running() {
    reap_nohang();
    return pid_ > 0 && !exit_code_;
}

void Process::terminate() {
    if (running()) ::kill(pid_, SIGTERM);
}

void Process::signal(int sig) {
    if (running()) ::kill(pid_, sig);
}

void Process::kill() {
    if (pid_ > 0) kill_group_and_reap();
}

void Process::kill_group_and_reap() {
    // The whole group: a child's own children (if any) go too.
    ::kill(-pid_, SIGKILL);
    if (!exit_code_) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        pid_t r;
        do {
            r = ::waitpid(pid_, &status, 0);
        } while (r < 0 && errno == EINTR);
        exit_code_ = r == pid_ ? decode_status(status) : -1;
    }
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        reap_nohang();
        if (exit_code_ || pid_ <= 0) return exit_code_;
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

std::string Process::read_log() const { return read_file(log_path_); }

std::string Process::log_tail(std::size_t max_bytes) const {
    std::string log = read_log();
    if (log.size() > max_bytes) log = "...\n" + log.substr(log.size() - max_bytes);
    return log;
}

}  // namespace cacheproxy::e2e
