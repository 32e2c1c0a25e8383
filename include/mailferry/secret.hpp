// secret.hpp — a buffer for passwords and keys that is wiped when it dies.
//
// A Secret is the only type that carries a plain password inside mailferry. It is
// move-only, has no operator<< and no implicit conversion to std::string, so it cannot
// drift into a log line, and its bytes are cleared with sodium_memzero on destruction,
// on move and on clear(). Copies must be made on purpose with clone().
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace mf {

// The longest password any door of mailferry accepts, in bytes: the engine answers FAIL
// above it before anybody is contacted, and `mailferry replay` refuses such lines. 4 KiB
// is far above what people type or password managers make, and still fits the old
// servers' SASL buffers (Dovecot reads 8 KiB of AUTHENTICATE PLAIN). Faces whose own
// protocol carries less say so in their headers (checkpassword: 512 bytes in all).
inline constexpr std::size_t kMaxPasswordBytes = 4096;

class Secret {
  public:
    Secret() = default;
    explicit Secret(std::string_view bytes);
    Secret(const char* data, std::size_t len) : Secret(std::string_view(data, len)) {}
    ~Secret();

    Secret(Secret&& other) noexcept;
    Secret& operator=(Secret&& other) noexcept;
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;

    [[nodiscard]] Secret clone() const { return Secret(view()); }

    // The bytes, for handing to a hash function or a protocol writer. Do not store.
    [[nodiscard]] std::string_view view() const { return {data_.get(), size_}; }
    [[nodiscard]] const char* data() const { return data_.get(); }
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] bool empty() const { return size_ == 0; }

    void clear();

  private:
    std::unique_ptr<char[]> data_; // NOLINT(modernize-avoid-c-arrays): sized exactly, wiped
    std::size_t size_ = 0;
};

// Wipe any buffer (std::string, vector) that held a secret before it is freed.
void wipe(void* data, std::size_t len);

} // namespace mf
