// authhttp_server.cpp — Beast sessions on a TCP or UNIX acceptor (see authhttp_server.hpp).
//
// A session reads one request, hands it to the pool, and writes the answer back from the
// I/O thread. While a request sits in the pool it holds a work guard on the I/O context,
// so a stop waits for its answer instead of dropping nginx's connection mid-login.
#include "authhttp_server.hpp"

#include "mailferry/log.hpp"
#include "mailferry/secret_alloc.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::authhttp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;

namespace {

using Alloc = WipingAllocator<char>;
using Parser = http::request_parser<http::empty_body, Alloc>;
using Buffer = beast::basic_flat_buffer<Alloc>;
using Response = http::response<http::empty_body>;

constexpr std::string_view kUnixPrefix = "unix:";

// nginx sends each of these once; a second copy is not nginx talking.
constexpr const char* kSingleFields[] = {"Auth-Method",    "Auth-User", "Auth-Pass",
                                         "Auth-Protocol",  "Client-IP", "Auth-Login-Attempt",
                                         "X-Mailferry-Key"};

std::string_view sv(beast::string_view v) {
    return {v.data(), v.size()};
}

} // namespace

struct Server::Impl {
    const AuthHttpConfig& cfg;
    RequestHandler handler;
    asio::io_context ioc{1};
    asio::thread_pool pool;
    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    std::optional<tcp::acceptor> tcp_acceptor;
    std::optional<local::acceptor> unix_acceptor;
    std::string unix_path; // to remove at the end

    Impl(const AuthHttpConfig& c, RequestHandler h)
        : cfg(c), handler(std::move(h)), pool(c.threads) {}

    template <class Acceptor>
    void accept(Acceptor& acceptor);
    void close_acceptors();
};

namespace {

template <class Protocol>
class Session : public std::enable_shared_from_this<Session<Protocol>> {
  public:
    Session(typename Protocol::socket socket, Server::Impl& srv)
        : stream_(std::move(socket)), srv_(srv) {}

    void start() {
        parser_.emplace();
        parser_->header_limit(kMaxHeaderBytes);
        parser_->body_limit(0);
        stream_.expires_after(srv_.cfg.read_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         beast::bind_front_handler(&Session::on_read, this->shared_from_this()));
    }

  private:
    void on_read(beast::error_code ec, std::size_t /*bytes*/) {
        stream_.expires_never();
        if (ec == http::error::end_of_stream && !parser_->got_some()) {
            close(); // a connection opened and closed without a byte: nothing to answer
            return;
        }
        if (ec == beast::error::timeout) {
            // The stream closed the socket already: nothing can be answered.
            log::warning("auth-http: a request did not arrive whole within " +
                         format_duration(srv_.cfg.read_timeout) + ": connection closed");
            return;
        }
        if (ec) {
            log::warning("auth-http: refused a request that is not nginx's: " + ec.message());
            answer(answer_bad_request());
            return;
        }
        const auto& req = parser_->get();
        version_ = req.version();
        if (req.method() != http::verb::get) {
            log::warning("auth-http: refused a " + std::string(sv(req.method_string())) +
                         " request: nginx asks with GET");
            answer(answer_bad_request());
            return;
        }
        for (const char* name : kSingleFields) {
            if (req.count(name) > 1) {
                log::warning(std::string("auth-http: refused a request with ") + name + " twice");
                answer(answer_bad_request());
                return;
            }
        }
        auto guard = asio::make_work_guard(srv_.ioc);
        asio::post(srv_.pool, [self = this->shared_from_this(), guard]() { self->work(); });
    }

    // On a pool thread; nothing else touches the session meanwhile.
    void work() {
        const auto& req = parser_->get();
        FieldLookup lookup = [&req](std::string_view name) -> std::optional<std::string_view> {
            auto it = req.find(beast::string_view(name.data(), name.size()));
            if (it == req.end()) {
                return std::nullopt;
            }
            return sv(it->value());
        };
        Answer a = srv_.handler(lookup);
        parser_.reset(); // the header fields, password included, are wiped as they go
        buffer_.clear();
        asio::post(stream_.get_executor(),
                   [self = this->shared_from_this(), a = std::move(a)]() mutable {
                       self->answer(std::move(a));
                   });
    }

    void answer(Answer a) {
        res_.version(version_);
        res_.result(a.status);
        for (const auto& [name, value] : a.headers) {
            res_.set(beast::string_view(name.data(), name.size()),
                     beast::string_view(value.data(), value.size()));
        }
        res_.set(http::field::connection, "close");
        res_.content_length(0);
        stream_.expires_after(srv_.cfg.read_timeout);
        http::async_write(stream_, res_,
                          beast::bind_front_handler(&Session::on_write, this->shared_from_this()));
    }

    void on_write(beast::error_code ec, std::size_t /*bytes*/) {
        if (ec) {
            log::warning("auth-http: writing the answer failed: " + ec.message());
        }
        close();
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(Protocol::socket::shutdown_send, ignored);
        stream_.socket().close(ignored);
    }

    beast::basic_stream<Protocol> stream_;
    Server::Impl& srv_;
    Buffer buffer_;
    std::optional<Parser> parser_;
    Response res_;
    unsigned version_ = 10;
};

template <class Protocol>
void start_session(typename Protocol::socket socket, Server::Impl& srv) {
    std::make_shared<Session<Protocol>>(std::move(socket), srv)->start();
}

// A UNIX socket path: a dead server's socket is replaced, a live one's is not taken.
Result<void> clear_unix_path(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        return {};
    }
    if (!S_ISSOCK(st.st_mode)) {
        return make_error("auth_http.listen " + path, "exists and is not a socket", Scope::config);
    }
    asio::io_context probe;
    local::socket s(probe);
    beast::error_code ec;
    s.connect(local::endpoint(path), ec);
    if (!ec) {
        return make_error("auth_http.listen " + path,
                          "another server answers on this socket already", Scope::config);
    }
    if (::unlink(path.c_str()) != 0) {
        return make_error("auth_http.listen " + path,
                          std::string("cannot remove the old socket: ") + std::strerror(errno),
                          Scope::config);
    }
    return {};
}

template <class Acceptor, class Endpoint>
Result<void> bind_acceptor(Acceptor& acceptor, const Endpoint& ep, const std::string& shown,
                           bool reuse) {
    beast::error_code ec;
    acceptor.open(ep.protocol(), ec);
    if (!ec && reuse) {
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
        acceptor.bind(ep, ec);
    }
    if (!ec) {
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        return make_error("auth_http.listen " + shown, "cannot listen: " + ec.message(),
                          Scope::config);
    }
    return {};
}

} // namespace

template <class Acceptor>
void Server::Impl::accept(Acceptor& acceptor) {
    using Protocol = typename Acceptor::protocol_type;
    acceptor.async_accept([this, &acceptor](beast::error_code ec, typename Protocol::socket s) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
            return;
        }
        if (ec) {
            // Out of descriptors, most likely: wait a little instead of spinning.
            log::warning("auth-http: accept failed: " + ec.message());
            auto timer = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(100));
            timer->async_wait([this, &acceptor, timer](beast::error_code) { accept(acceptor); });
            return;
        }
        start_session<Protocol>(std::move(s), *this);
        accept(acceptor);
    });
}

void Server::Impl::close_acceptors() {
    beast::error_code ignored;
    if (tcp_acceptor) {
        tcp_acceptor->close(ignored);
    }
    if (unix_acceptor) {
        unix_acceptor->close(ignored);
    }
    signals.cancel(ignored);
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
    if (impl_ && !impl_->unix_path.empty()) {
        ::unlink(impl_->unix_path.c_str());
    }
}

Result<std::unique_ptr<Server>> Server::open(const AuthHttpConfig& cfg, RequestHandler handler) {
    auto impl = std::make_unique<Impl>(cfg, std::move(handler));
    const std::string& listen = cfg.listen;
    if (listen.starts_with(kUnixPrefix)) {
        std::string path = listen.substr(kUnixPrefix.size());
        if (auto ok = clear_unix_path(path); !ok) {
            return ok.error();
        }
        impl->unix_acceptor.emplace(impl->ioc);
        if (auto ok = bind_acceptor(*impl->unix_acceptor, local::endpoint(path), path, false);
            !ok) {
            return ok.error();
        }
        impl->unix_path = path;
        // nginx's workers reach the socket through the group.
        if (::chmod(path.c_str(), 0660) != 0) {
            return make_error("auth_http.listen " + path,
                              std::string("chmod 0660 failed: ") + std::strerror(errno),
                              Scope::config);
        }
    } else {
        auto at = parse_ip_port(listen);
        if (!at) {
            return make_error("auth_http.listen", "\"" + listen + "\" is no address",
                              Scope::config);
        }
        beast::error_code ec;
        auto address = asio::ip::make_address(at->ip, ec);
        if (ec) {
            return make_error("auth_http.listen", ec.message(), Scope::config);
        }
        impl->tcp_acceptor.emplace(impl->ioc);
        if (auto ok =
                bind_acceptor(*impl->tcp_acceptor, tcp::endpoint(address, at->port), listen, true);
            !ok) {
            return ok.error();
        }
    }
    return std::unique_ptr<Server>(new Server(std::move(impl))); // NOLINT: private ctor
}

void Server::run() {
    Impl& s = *impl_;
    s.signals.async_wait([&s](beast::error_code ec, int sig) {
        if (!ec) {
            log::info(std::string("auth-http: ") + ::strsignal(sig) + ": stopping");
            s.close_acceptors();
        }
    });
    if (s.tcp_acceptor) {
        s.accept(*s.tcp_acceptor);
    }
    if (s.unix_acceptor) {
        s.accept(*s.unix_acceptor);
    }
    log::info("auth-http: listening on " + s.cfg.listen);
    s.ioc.run();
    s.pool.join();
}

void Server::stop() {
    asio::post(impl_->ioc, [impl = impl_.get()] { impl->close_acceptors(); });
}

} // namespace mf::authhttp
