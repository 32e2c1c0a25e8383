// imap_io.cpp — TCP/TLS transport with deadlines and the bounded line/chunk reader.
//
// Each operation runs on a private io_context for at most timeout_; if it has not finished
// by then the socket is closed (which completes the operation as aborted) and the caller
// gets a timeout error. Must never wait without a deadline or accept an unverified
// certificate while verification is on. Errors name the peer and the operation.
#include "imap_io.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstring>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <optional>

namespace mf::imap {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct Transport::Impl {
    asio::io_context ctx;
    tcp::socket sock{ctx};
    std::optional<asio::ssl::context> ssl_ctx;
    std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;
    std::string host;

    // Runs whatever `start` queued on ctx for at most `limit`. On timeout the socket is
    // closed so the pending operation completes (aborted) before we return.
    template <typename Start>
    error_code run(std::chrono::milliseconds limit, Start&& start) {
        error_code ec = asio::error::would_block;
        start(ec);
        ctx.restart();
        ctx.run_for(limit);
        if (!ctx.stopped()) {
            error_code ignored;
            sock.close(ignored);
            ctx.restart();
            ctx.run();
            return asio::error::timed_out;
        }
        return ec;
    }
};

namespace {

Error net_error(const std::string& what, const error_code& ec) {
    std::string detail = ec == asio::error::timed_out ? std::string("timed out") : ec.message();
    if (ec.category() == asio::error::get_ssl_category()) {
        unsigned long e = ERR_get_error();
        if (e != 0) {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof buf);
            detail = buf;
        }
    }
    return make_error(what, detail, Scope::server, Retry::later);
}

bool is_ip_literal(const std::string& host) {
    error_code ec;
    (void)asio::ip::make_address(host, ec);
    return !ec;
}

} // namespace

Transport::Transport() : impl_(std::make_unique<Impl>()) {}
Transport::~Transport() {
    close();
}

Result<std::unique_ptr<Transport>> Transport::connect(const std::string& host, std::uint16_t port,
                                                      std::chrono::milliseconds timeout) {
    std::unique_ptr<Transport> t(new Transport()); // private constructor
    t->timeout_ = timeout;
    t->impl_->host = host;
    t->peer_ = host + ":" + std::to_string(port);
    Impl& im = *t->impl_;

    tcp::resolver resolver(im.ctx);
    tcp::resolver::results_type endpoints;
    error_code ec = im.run(timeout, [&](error_code& out) {
        resolver.async_resolve(host, std::to_string(port),
                               [&](const error_code& e, tcp::resolver::results_type r) {
                                   out = e;
                                   endpoints = std::move(r);
                               });
    });
    if (ec) {
        return net_error("resolve " + t->peer_, ec);
    }
    ec = im.run(timeout, [&](error_code& out) {
        asio::async_connect(im.sock, endpoints,
                            [&](const error_code& e, const tcp::endpoint&) { out = e; });
    });
    if (ec) {
        return net_error("connect to " + t->peer_, ec);
    }
    error_code ignored;
    im.sock.set_option(tcp::no_delay(true), ignored);
    return t;
}

Result<void> Transport::start_tls(const TlsOptions& opts) {
    Impl& im = *impl_;
    const std::string what = "TLS handshake with " + peer_;
    im.ssl_ctx.emplace(asio::ssl::context::tls_client);
    auto& ctx = *im.ssl_ctx;
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                    asio::ssl::context::no_tlsv1_1);
    error_code ec;
    if (opts.verify) {
        if (!opts.ca_file.empty()) {
            ctx.load_verify_file(opts.ca_file, ec);
            if (ec) {
                return make_error("load CA file " + opts.ca_file, ec.message(), Scope::config,
                                  Retry::never);
            }
        } else {
            ctx.set_default_verify_paths(ec);
            if (ec) {
                return make_error("load the system CA store", ec.message(), Scope::config,
                                  Retry::never);
            }
        }
        ctx.set_verify_mode(asio::ssl::verify_peer);
    } else {
        ctx.set_verify_mode(asio::ssl::verify_none);
    }
    im.tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(im.sock, ctx);
    SSL* ssl = im.tls->native_handle();
    const std::string name = opts.server_name.empty() ? im.host : opts.server_name;
    if (!is_ip_literal(name)) {
        SSL_set_tlsext_host_name(ssl, name.c_str());
    }
    if (opts.verify) {
        // OpenSSL checks the name (or IP SAN) as part of chain verification, so a wrong
        // name fails the handshake itself.
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int ok = is_ip_literal(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                                     : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
        if (ok != 1) {
            return make_error(what, "cannot set the name to verify: " + name, Scope::config,
                              Retry::never);
        }
    }
    ERR_clear_error();
    ec = im.run(timeout_, [&](error_code& out) {
        im.tls->async_handshake(asio::ssl::stream_base::client,
                                [&](const error_code& e) { out = e; });
    });
    if (ec) {
        long vr = SSL_get_verify_result(ssl);
        if (opts.verify && vr != X509_V_OK) {
            return make_error(what,
                              std::string("certificate not trusted: ") +
                                  X509_verify_cert_error_string(vr) + " (expected " + name + ")",
                              Scope::server, Retry::never);
        }
        return net_error(what, ec);
    }
    return {};
}

bool Transport::tls() const {
    return impl_->tls != nullptr;
}

Result<std::size_t> Transport::read_some(char* buf, std::size_t len) {
    Impl& im = *impl_;
    if (!im.sock.is_open()) {
        return make_error("read from " + peer_, "connection closed", Scope::server, Retry::later);
    }
    std::size_t got = 0;
    error_code ec = im.run(timeout_, [&](error_code& out) {
        auto done = [&](const error_code& e, std::size_t n) {
            out = e;
            got = n;
        };
        if (im.tls) {
            im.tls->async_read_some(asio::buffer(buf, len), done);
        } else {
            im.sock.async_read_some(asio::buffer(buf, len), done);
        }
    });
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
        return make_error("read from " + peer_, "connection closed by the server", Scope::server,
                          Retry::later);
    }
    if (ec) {
        return net_error("read from " + peer_, ec);
    }
    return got;
}

Result<void> Transport::write(std::string_view data) {
    Impl& im = *impl_;
    if (!im.sock.is_open()) {
        return make_error("write to " + peer_, "connection closed", Scope::server, Retry::later);
    }
    error_code ec = im.run(timeout_, [&](error_code& out) {
        auto done = [&](const error_code& e, std::size_t) { out = e; };
        if (im.tls) {
            asio::async_write(*im.tls, asio::buffer(data.data(), data.size()), done);
        } else {
            asio::async_write(im.sock, asio::buffer(data.data(), data.size()), done);
        }
    });
    if (ec) {
        return net_error("write to " + peer_, ec);
    }
    return {};
}

void Transport::close() {
    if (impl_ && impl_->sock.is_open()) {
        error_code ignored;
        impl_->sock.shutdown(tcp::socket::shutdown_both, ignored);
        impl_->sock.close(ignored);
    }
}

// ---- Input ------------------------------------------------------------------------------

Input::Input(ByteSource& src, std::size_t buffer_size)
    : src_(src), buf_(buffer_size), base_size_(buffer_size) {}

Result<void> Input::fill() {
    if (begin_ == end_) {
        begin_ = end_ = 0;
        if (buf_.size() > base_size_) {
            buf_.resize(base_size_); // a long line is over: give the memory back
            buf_.shrink_to_fit();
        }
    } else if (end_ == buf_.size() && begin_ > 0) {
        std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (end_ == buf_.size()) {
        buf_.resize(buf_.size() * 2); // only line() gets here, and it bounds the size
    }
    auto n = src_.read_some(buf_.data() + end_, buf_.size() - end_);
    if (!n) {
        return n.error();
    }
    end_ += *n;
    return {};
}

Result<std::string_view> Input::line(std::size_t max_len) {
    std::size_t scanned = 0;
    for (;;) {
        const char* start = buf_.data() + begin_;
        const std::size_t avail = end_ - begin_;
        const void* lf = std::memchr(start + scanned, '\n', avail - scanned);
        if (lf != nullptr) {
            std::size_t len = static_cast<const char*>(lf) - start;
            std::size_t next = begin_ + len + 1;
            if (len > 0 && start[len - 1] == '\r') {
                --len;
            }
            if (len > max_len) {
                return make_error("read a response line",
                                  "longer than " + std::to_string(max_len) + " bytes",
                                  Scope::server, Retry::never);
            }
            if (std::memchr(start, '\0', len) != nullptr) {
                return make_error("read a response line", "it contains a NUL byte", Scope::server,
                                  Retry::never);
            }
            begin_ = next;
            return std::string_view(start, len);
        }
        scanned = avail;
        if (avail > max_len + 1) {
            return make_error("read a response line",
                              "longer than " + std::to_string(max_len) + " bytes", Scope::server,
                              Retry::never);
        }
        auto r = fill();
        if (!r) {
            return r.error();
        }
    }
}

Result<std::string_view> Input::some(std::size_t max) {
    if (begin_ == end_) {
        auto r = fill();
        if (!r) {
            return r.error();
        }
    }
    std::size_t n = std::min(max, end_ - begin_);
    std::string_view v(buf_.data() + begin_, n);
    begin_ += n;
    return v;
}

Result<std::size_t> StringSource::read_some(char* buf, std::size_t len) {
    if (pos_ >= data_.size()) {
        return make_error("read", "connection closed by the server", Scope::server, Retry::later);
    }
    std::size_t n = std::min({len, chunk_, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, n);
    pos_ += n;
    return n;
}

} // namespace mf::imap
