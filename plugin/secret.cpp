// secret.cpp — wiped buffers for passwords and keys.
#include "mailferry/secret.hpp"

#include <cstring>
#include <sodium.h>

namespace mf {

void wipe(void* data, std::size_t len) {
    if (data != nullptr && len > 0) {
        sodium_memzero(data, len);
    }
}

Secret::Secret(std::string_view bytes)
    : data_(std::make_unique<char[]>(bytes.size() + 1)), size_(bytes.size()) {
    if (!bytes.empty()) {
        std::memcpy(data_.get(), bytes.data(), bytes.size());
    }
    data_[size_] = '\0'; // callers that need a C string (libcurl) may use data()
}

Secret::~Secret() {
    clear();
}

Secret::Secret(Secret&& other) noexcept : data_(std::move(other.data_)), size_(other.size_) {
    other.size_ = 0;
}

Secret& Secret::operator=(Secret&& other) noexcept {
    if (this != &other) {
        clear();
        data_ = std::move(other.data_);
        size_ = other.size_;
        other.size_ = 0;
    }
    return *this;
}

void Secret::clear() {
    if (data_) {
        wipe(data_.get(), size_ + 1);
        data_.reset();
    }
    size_ = 0;
}

} // namespace mf
