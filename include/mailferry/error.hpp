// error.hpp — errors as values for the whole engine.
//
// Every fallible call returns Result<T>: a value, or an Error that says what we were
// doing, on what (account, server, file:line:key), what the peer replied (sanitized),
// and how far the failure reaches and whether retrying can help. Callers decide; the
// C ABI turns errors into result codes and never lets an exception escape.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace mf {

// How far a failure reaches (after isync's grading by scope).
enum class Scope { message, folder, account, server, config, internal };

// Whether trying again can help. `later` maps to TEMPFAIL / EX_TEMPFAIL (75).
enum class Retry { never, later };

struct Error {
    std::string what; // "connect to old.example:993", "parse mailferry.toml:12 key providers.port"
    std::string detail; // reason: errno text, server reply (sanitized), expected value
    Scope scope = Scope::internal;
    Retry retry = Retry::never;

    [[nodiscard]] std::string message() const {
        return detail.empty() ? what : what + ": " + detail;
    }
    [[nodiscard]] bool temporary() const { return retry == Retry::later; }
};

inline Error make_error(std::string what, std::string detail = {}, Scope scope = Scope::internal,
                        Retry retry = Retry::never) {
    return Error{std::move(what), std::move(detail), scope, retry};
}

// A value or an Error. Deliberately small: std::expected is C++23.
template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value)
        : v_(std::in_place_index<0>, std::move(value)) {} // NOLINT(google-explicit-constructor)
    Result(Error error)
        : v_(std::in_place_index<1>, std::move(error)) {} // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    T& operator*() & { return std::get<0>(v_); }
    const T& operator*() const& { return std::get<0>(v_); }

    [[nodiscard]] const Error& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)) {} // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool ok() const { return !error_.has_value(); }
    explicit operator bool() const { return ok(); }
    [[nodiscard]] const Error& error() const { return *error_; }

  private:
    std::optional<Error> error_;
};

// Keep a peer's reply printable and short before it goes into an Error or a log line.
std::string sanitize_reply(std::string_view reply, std::size_t max_len = 200);

} // namespace mf
