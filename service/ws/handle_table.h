// HandleTable<T>: maps opaque 64-bit handle values to objects so that a stale, forged or deleted
// handle is an error instead of a crash. Values are never reused.
//
// Object lifetime: the table owns each object from insert() until erase(); erase() waits for calls
// already inside the object (they hold its lock) and destroys it after they finish.
// Thread safety: every member is safe from any thread. with() runs its function under the
// object's own mutex, so calls on one handle are serialised and calls on different handles are not.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace wsgate::ws {

template <class T>
class HandleTable {
 public:
  // How new handle values are made: a counter (in-process C ABI) or a caller-supplied generator
  // such as a CSPRNG (ids that cross a trust boundary must be unguessable).
  using IdGenerator = std::uint64_t (*)();

  explicit HandleTable(IdGenerator generator = nullptr) : generator_(generator) {}

  // Stores `object`; returns its handle value (never 0).
  std::uint64_t insert(std::unique_ptr<T> object) {
    auto entry = std::make_shared<Entry>();
    entry->object = std::move(object);
    std::lock_guard lock(mutex_);
    std::uint64_t id;
    do {
      id = generator_ ? generator_() : ++counter_;
    } while (id == 0 || entries_.count(id) != 0);
    entries_.emplace(id, std::move(entry));
    return id;
  }

  // Runs fn(T&) under the object's lock. Returns false (fn not run) for an unknown handle.
  template <class Fn>
  bool with(std::uint64_t id, Fn&& fn) {
    std::shared_ptr<Entry> entry = find(id);
    if (!entry) return false;
    std::lock_guard lock(entry->mutex);
    if (!entry->object) return false;  // erased while we waited
    std::forward<Fn>(fn)(*entry->object);
    return true;
  }

  // Removes and destroys the object. Returns false for an unknown handle.
  bool erase(std::uint64_t id) {
    std::shared_ptr<Entry> entry;
    {
      std::lock_guard lock(mutex_);
      auto it = entries_.find(id);
      if (it == entries_.end()) return false;
      entry = std::move(it->second);
      entries_.erase(it);
    }
    std::unique_ptr<T> doomed;
    {
      std::lock_guard lock(entry->mutex);
      doomed = std::move(entry->object);
    }
    return true;  // `doomed` is destroyed here, outside every lock
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  struct Entry {
    std::mutex mutex;
    std::unique_ptr<T> object;
  };

  std::shared_ptr<Entry> find(std::uint64_t id) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : it->second;
  }

  IdGenerator generator_;
  mutable std::mutex mutex_;
  std::uint64_t counter_ = 0;
  std::unordered_map<std::uint64_t, std::shared_ptr<Entry>> entries_;
};

}  // namespace wsgate::ws
