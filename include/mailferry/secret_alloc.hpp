// secret_alloc.hpp — an allocator that wipes memory before giving it back.
//
// For containers a library fills with bytes that may hold a password before we can take
// them into a Secret: Beast's request buffer and header fields (the nginx auth_http face
// gets the password in a header). Every block is cleared with mf::wipe when the container
// frees or regrows it, so no copy of the password is left in freed heap memory.
#pragma once

#include "mailferry/secret.hpp"

#include <cstddef>
#include <memory>

namespace mf {

template <typename T>
struct WipingAllocator {
    using value_type = T;

    WipingAllocator() noexcept = default;
    template <typename U>
    WipingAllocator(const WipingAllocator<U>& /*other*/) noexcept {} // NOLINT: rebinding

    T* allocate(std::size_t n) { return std::allocator<T>{}.allocate(n); }
    void deallocate(T* p, std::size_t n) noexcept {
        wipe(p, n * sizeof(T));
        std::allocator<T>{}.deallocate(p, n);
    }

    template <typename U>
    bool operator==(const WipingAllocator<U>& /*other*/) const noexcept {
        return true;
    }
};

} // namespace mf
