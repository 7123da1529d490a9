#pragma once
/// A connection's memory for its request's header fields (and a relayed
/// response's), so that reading a request allocates nothing (issue 16;
/// Beast's `http_server_fast` example does the same with its `fields_alloc`).
///
/// Beast's basic_fields allocates one block per field and one for the start
/// line, through its allocator. With `ArenaAllocator` those blocks are carved
/// from the connection's FieldArena, one bump of an offset each; when the
/// last of them is given back (the parser of the request is destroyed before
/// the next request's is made) the arena starts over from its first byte.
/// A request whose fields do not fit takes the rest from the heap, as before:
/// nothing is refused for want of arena (limits.max_header_bytes refuses).
///
/// Owned by one connection and touched only on its worker's thread. The
/// arena must outlive every basic_fields that uses it: a copy of such fields
/// is made on the heap (select_on_container_copy_construction), so only the
/// parser's own fields, which the connection owns after the arena, use it.

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <functional>
#include <new>
#include <type_traits>

namespace cacheproxy::http {

/// The arena's logic over storage its subclass holds (InlineFieldArena).
class FieldArena {
public:
    FieldArena(const FieldArena&) = delete;
    FieldArena& operator=(const FieldArena&) = delete;

    /// `bytes` aligned to `align` from the arena, or null when it is full.
    void* take(std::size_t bytes, std::size_t align) noexcept {
        const std::size_t start = (used_ + align - 1) & ~(align - 1);
        if (start > capacity_ || bytes > capacity_ - start) return nullptr;
        used_ = start + bytes;
        ++live_;
        return data_ + start;
    }
    bool owns(const void* p) const noexcept {
        const std::less<const void*> before;  // a total order, also for pointers into other objects
        return !before(p, data_) && before(p, data_ + capacity_);
    }
    /// Gives back a block take() returned; the last one out resets the arena
    /// (its bytes are not reused before: a request's fields are few).
    void give_back() noexcept {
        if (--live_ == 0) used_ = 0;
    }
    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t used() const noexcept { return used_; }
    std::size_t live() const noexcept { return live_; }

protected:
    FieldArena(unsigned char* data, std::size_t capacity) noexcept : data_(data), capacity_(capacity) {}
    ~FieldArena() = default;

private:
    unsigned char* const data_;
    const std::size_t capacity_;
    std::size_t used_ = 0;
    std::size_t live_ = 0;
};

/// A FieldArena of `Bytes`, inside its owner (no allocation of its own).
template <std::size_t Bytes>
class InlineFieldArena final : public FieldArena {
public:
    InlineFieldArena() noexcept : FieldArena(storage_, Bytes) {}

private:
    alignas(std::max_align_t) unsigned char storage_[Bytes];
};

/// A client request's fields: a browser's request with cookies fits (~1 KiB for an API call).
using RequestArena = InlineFieldArena<4096>;
/// A relayed response's fields, and the few the proxy adds (Date, Via).
using ResponseArena = InlineFieldArena<2048>;

/// A std allocator over a FieldArena; a default-constructed one (no arena)
/// is the heap, so the field types below are usable anywhere (tests, copies).
template <class T>
class ArenaAllocator {
public:
    using value_type = T;
    using is_always_equal = std::false_type;
    using propagate_on_container_copy_assignment = std::false_type;
    // Never carried to other fields: moving or swapping into fields on the
    // heap copies the elements there (basic_fields does, for unequal allocators).
    using propagate_on_container_move_assignment = std::false_type;
    using propagate_on_container_swap = std::false_type;

    ArenaAllocator() noexcept = default;
    explicit ArenaAllocator(FieldArena* arena) noexcept : arena_(arena) {}
    template <class U>
    ArenaAllocator(const ArenaAllocator<U>& other) noexcept : arena_(other.arena()) {}

    T* allocate(std::size_t n) {
        const std::size_t bytes = n * sizeof(T);
        if (arena_)
            if (void* p = arena_->take(bytes, alignof(T))) return static_cast<T*>(p);
        return static_cast<T*>(::operator new(bytes));
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if (arena_ && arena_->owns(p)) {
            arena_->give_back();
            return;
        }
        ::operator delete(p);
    }
    /// A copy of fields lives on the heap: it may outlive the connection.
    ArenaAllocator select_on_container_copy_construction() const noexcept { return ArenaAllocator(); }

    FieldArena* arena() const noexcept { return arena_; }
    template <class U>
    bool operator==(const ArenaAllocator<U>& o) const noexcept {
        return arena_ == o.arena();
    }
    template <class U>
    bool operator!=(const ArenaAllocator<U>& o) const noexcept {
        return arena_ != o.arena();
    }

private:
    FieldArena* arena_ = nullptr;
};

/// The fields of a client's request, and its header, as every step reads them.
using Fields = boost::beast::http::basic_fields<ArenaAllocator<char>>;
using RequestHeader = boost::beast::http::request_header<Fields>;
/// A parser of such requests (without an arena given, its fields are on the heap).
template <class Body>
using RequestParserOf = boost::beast::http::request_parser<Body, ArenaAllocator<char>>;
/// A relayed response's header and parser, alike.
using ResponseHeader = boost::beast::http::response_header<Fields>;
template <class Body>
using ResponseParserOf = boost::beast::http::response_parser<Body, ArenaAllocator<char>>;

}  // namespace cacheproxy::http
