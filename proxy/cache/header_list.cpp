#include "cache/header_list.hpp"

#include "cache/header_tokens.hpp"

namespace cacheproxy::cache {

HeaderList::HeaderList(std::initializer_list<HeaderField> fields) : fields_(fields) {}

void HeaderList::add(std::string_view name, std::string_view value) { fields_.push_back({name, value}); }

std::size_t HeaderList::count(std::string_view name) const {
    std::size_t n = 0;
    for (const auto& f : fields_)
        if (iequals(f.name, name)) ++n;
    return n;
}

std::string_view HeaderList::value(std::string_view name, std::size_t nth) const {
    for (const auto& f : fields_) {
        if (!iequals(f.name, name)) continue;
        if (nth == 0) return f.value;
        --nth;
    }
    return {};
}

}  // namespace cacheproxy::cache
