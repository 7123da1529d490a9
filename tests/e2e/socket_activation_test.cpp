/// systemd socket activation (issue 14): the test plays systemd. It opens the
/// listening socket itself, passes it as fd 3 with LISTEN_FDS=1 and
/// LISTEN_PID set (fork + exec), and checks the proxy serves on it; then it
/// restarts the proxy (SIGTERM the old one, start a new one on the same
/// socket) while a client keeps connecting, and no connection attempt fails.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <string>
#include <cstring>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

/// A listening loopback socket on a port the kernel picks.
int listen_socket(std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1024) != 0) {
        ::close(fd);
        return -1;
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

/// The proxy, started the way systemd starts it: `listen_fd` as fd 3.
class ActivatedProxy {
public:
    ActivatedProxy(int listen_fd, const std::string& config_path, const std::string& log_path) {
        // Everything the child needs is made before fork: after it, only
        // async-signal-safe calls (the test process has threads).
        std::vector<std::string> env{"LISTEN_FDS=1", "LISTEN_PID=0000000000"};
        for (char** e = environ; *e; ++e)
            if (std::strncmp(*e, "LISTEN_", 7) != 0) env.emplace_back(*e);
        std::vector<char*> envp;
        for (auto& e : env) envp.push_back(e.data());
        envp.push_back(nullptr);
        char* const pid_digits = env[1].data() + std::strlen("LISTEN_PID=");
        const std::string binary = CACHEPROXY_BINARY;
        std::vector<char*> argv{const_cast<char*>(binary.c_str()), const_cast<char*>("--config"),
                                const_cast<char*>(config_path.c_str()), nullptr};
        pid_ = ::fork();
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            ::dup2(log, 1);
            ::dup2(log, 2);
            if (listen_fd == 3)
                ::fcntl(3, F_SETFD, 0);  // already in place: only keep it across exec
            else
                ::dup2(listen_fd, 3);    // the copy is not close-on-exec
            long pid = ::getpid();
            for (int i = 9; i >= 0; --i, pid /= 10) pid_digits[i] = static_cast<char>('0' + pid % 10);
            ::execve(argv[0], argv.data(), envp.data());
            ::_exit(127);
        }
    }
    ~ActivatedProxy() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    ActivatedProxy(const ActivatedProxy&) = delete;
    ActivatedProxy& operator=(const ActivatedProxy&) = delete;

    /// SIGTERM, then waits for the exit (10 s at most); its exit code or -1.
    int stop() {
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 500; ++i) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                exited_ = true;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(milliseconds(20));
        }
        return -1;
    }

private:
    pid_t pid_ = -1;
    bool exited_ = false;
};

class SocketActivation : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }
};

TEST_F(SocketActivation, ServesOnThePassedSocketAndARestartLosesNoConnection) {
    std::uint16_t port = 0;
    const int fd = listen_socket(port);
    ASSERT_GE(fd, 0) << "cannot open a loopback listening socket";
    TempDir dir("cacheproxy-activation");
    ProxyConfig config(sim().url());  // its own listen port is never bound: the passed socket wins
    const std::string config_path = dir.write("config.yaml", config.to_yaml());

    auto proxy = std::make_unique<ActivatedProxy>(fd, config_path, dir.file("proxy.log"));
    // client: served on the socket the test opened
    Response first;
    ASSERT_TRUE(wait_until(
        [&] {
            first = http_request(port, "GET", "/echo/activated", {}, {}, milliseconds(500));
            return first.status == 200;
        },
        seconds(10)))
        << "no answer on the passed socket";
    EXPECT_NE(first.body.find("/echo/activated"), std::string::npos) << first.body;

    // client: requests in a loop (bounded) while the proxy is restarted
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0}, lost{0};
    std::jthread client([&] {
        const auto deadline = std::chrono::steady_clock::now() + seconds(20);
        for (int i = 0; i < 2000 && !stop.load() && std::chrono::steady_clock::now() < deadline; ++i) {
            Response r = http_request(port, "GET", "/echo/loop", {}, {}, seconds(5));
            (r.status == 200 ? ok : lost).fetch_add(1);
        }
    });
    std::this_thread::sleep_for(milliseconds(200));
    EXPECT_EQ(proxy->stop(), 0) << "the old proxy did not drain and exit 0";
    std::this_thread::sleep_for(milliseconds(100));  // nobody accepts now: connections wait in the backlog
    const int before_restart = ok.load();
    proxy = std::make_unique<ActivatedProxy>(fd, config_path, dir.file("proxy.log"));
    ASSERT_TRUE(wait_until([&] { return ok.load() > before_restart + 5; }, seconds(10)))
        << "the new proxy does not serve the passed socket";
    stop.store(true);
    client.join();
    EXPECT_EQ(lost.load(), 0) << ok.load() << " answered";
    EXPECT_GT(ok.load(), 10);
    EXPECT_EQ(proxy->stop(), 0);
    ::close(fd);
}

}  // namespace
}  // namespace cacheproxy::e2e
