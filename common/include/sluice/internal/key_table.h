// The hash table of the heap backend's keyed state: serialized keys to entries, for one state in
// one key group.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::internal {
namespace state_internal {

// Hash and equality of serialized keys, inlined for the short keys most jobs have (a number, a
// short string): the library's string hash and memcmp calls cost more than the lookup itself.
inline uint64_t load_tail(const char* p, size_t n) {  // n <= 8
  uint64_t v = 0;
  if (n > 0) std::memcpy(&v, p, n);
  return v;
}
inline uint64_t hash_key_bytes(std::string_view k) noexcept {
  const char* p = k.data();
  size_t n = k.size();
  uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    p += 8;
    n -= 8;
  }
  if (n > 0) h = (h ^ load_tail(p, n)) * 0xc4ceb9fe1a85ec53ull;
  // Finish so that every input bit reaches the high bits, which KeyTable's codes and homes use.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}
inline bool key_bytes_equal(std::string_view a, std::string_view b) noexcept {
  size_t n = a.size();
  if (n != b.size()) return false;
  if (n <= 8) return load_tail(a.data(), n) == load_tail(b.data(), n);
  return std::memcmp(a.data(), b.data(), n) == 0;
}

// Serialized key bytes with their hash_key_bytes, computed once for every table looked up.
struct HashedKey {
  std::string_view bytes;
  uint64_t hash;
};
inline HashedKey hashed(std::string_view bytes) { return {bytes, hash_key_bytes(bytes)}; }

}  // namespace state_internal

// Entries by serialized key, with open addressing: a power-of-two array of slots (a code from
// the key's hash, the key, the entry), probed linearly, at most 3/4 full. A key of up to 8 bytes
// (a number, a short string) is kept in its slot, so that for a small entry a slot is 32 bytes
// and a lookup of a present key usually reads one cache line, where a node-based table reads two
// or three. The address of an entry is valid until the next insert or erase.
template <class E>
class KeyTable {
 public:
  KeyTable() = default;
  KeyTable(const KeyTable&) = delete;
  KeyTable& operator=(const KeyTable&) = delete;
  KeyTable(KeyTable&& o) noexcept { swap(o); }
  KeyTable& operator=(KeyTable&& o) noexcept {
    KeyTable t(std::move(o));
    swap(t);
    return *this;
  }
  ~KeyTable() {
    for (Slot& s : slots_) free_key(s);
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Calls fn(key, entry) for every entry, in no particular order.
  template <class F>
  void for_each(F&& fn) const {
    for (const Slot& s : slots_) {
      if (s.code != 0) fn(s.key(), s.entry);
    }
  }
  template <class F>
  void for_each(F&& fn) {
    for (Slot& s : slots_) {
      if (s.code != 0) fn(s.key(), s.entry);
    }
  }
  // Removes every entry, keeping the slots' memory.
  void clear() {
    if (size_ == 0) return;
    for (Slot& s : slots_) {
      free_key(s);
      s = Slot{};
    }
    size_ = 0;
  }

  // The entry of `k`, or nullptr.
  E* find(const state_internal::HashedKey& k) {
    size_t s = find_slot(k);
    return s == kNoSlot ? nullptr : &slots_[s].entry;
  }
  // Adds `k`, which must be absent, with a value-initialized entry.
  E& insert(const state_internal::HashedKey& k) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    if (k.bytes.size() > UINT32_MAX) throw std::length_error("a key of over 4 GiB");
    const uint32_t c = code(k.hash);
    size_t s = home(c);
    while (slots_[s].code != 0) s = (s + 1) & mask_;
    Slot& slot = slots_[s];
    slot.size = static_cast<uint32_t>(k.bytes.size());
    char* to = slot.size <= kInline ? slot.k.inline_bytes : (slot.k.heap = new char[slot.size]);
    if (slot.size > 0) std::memcpy(to, k.bytes.data(), slot.size);
    slot.code = c;
    ++size_;
    return slot.entry;
  }
  // The entry of `k`, added when absent.
  E& find_or_insert(const state_internal::HashedKey& k) {
    E* e = find(k);
    return e ? *e : insert(k);
  }
  // Removes the entry of `k`, if any. Later slots of its probe run move back (no tombstones):
  // a slot moves into the hole unless its home lies cyclically in (hole, its position].
  void erase(const state_internal::HashedKey& k) {
    size_t hole = find_slot(k);
    if (hole == kNoSlot) return;
    free_key(slots_[hole]);
    for (size_t j = (hole + 1) & mask_; slots_[j].code != 0; j = (j + 1) & mask_) {
      const size_t h = home(slots_[j].code);
      const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
      if (stays) continue;
      slots_[hole] = std::move(slots_[j]);  // the key's bytes or pointer move with it
      hole = j;
    }
    slots_[hole] = Slot{};
    --size_;
  }

 private:
  static constexpr size_t kInline = 8;
  struct Slot {
    uint32_t code = 0;  // code(hash) of the key; 0: empty
    uint32_t size = 0;  // of the key
    union {
      char inline_bytes[kInline];
      char* heap;  // owned by the table: a key of more than kInline bytes
    } k{};
    E entry{};
    std::string_view key() const { return {size <= kInline ? k.inline_bytes : k.heap, size}; }
  };
  static constexpr size_t kNoSlot = SIZE_MAX;
  // A used slot's code is never 0; its home is taken from the code, so that growing needs no
  // hash of the keys.
  static uint32_t code(uint64_t hash) { return static_cast<uint32_t>(hash >> 32) | 1; }
  size_t home(uint32_t c) const { return (c >> 1) & mask_; }
  static void free_key(Slot& s) {
    if (s.code != 0 && s.size > kInline) delete[] s.k.heap;
  }
  void swap(KeyTable& o) noexcept {
    slots_.swap(o.slots_);
    std::swap(mask_, o.mask_);
    std::swap(size_, o.size_);
  }

  size_t find_slot(const state_internal::HashedKey& k) const {
    if (size_ == 0) return kNoSlot;
    const uint32_t c = code(k.hash);
    for (size_t s = home(c);; s = (s + 1) & mask_) {
      const Slot& slot = slots_[s];
      if (slot.code == c && state_internal::key_bytes_equal(slot.key(), k.bytes)) return s;
      if (slot.code == 0) return kNoSlot;
    }
  }
  void grow() {
    if (slots_.size() > (size_t{1} << 30))
      throw std::length_error("too many keys in one key group");
    const size_t n = slots_.empty() ? 8 : slots_.size() * 2;
    std::vector<Slot> bigger(n);  // may throw: the table is unchanged then
    slots_.swap(bigger);
    mask_ = n - 1;
    for (Slot& o : bigger) {
      if (o.code == 0) continue;
      size_t s = home(o.code);
      while (slots_[s].code != 0) s = (s + 1) & mask_;
      slots_[s] = std::move(o);  // E's move must not throw (as a std::vector's growth assumes)
      o.code = 0;                // its key now belongs to the new slot
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace sluice::internal
