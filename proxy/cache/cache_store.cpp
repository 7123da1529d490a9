#include "cache/cache_store.hpp"

namespace cacheproxy::cache {

CacheStore::~CacheStore() = default;

}  // namespace cacheproxy::cache
