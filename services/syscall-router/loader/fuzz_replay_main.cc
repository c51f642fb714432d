// A main() for the loader's fuzz target built without libFuzzer (g++, the
// normal test suite), after //ipc/fuzz:fuzz_replay_main.cc: replays every
// file of the given corpus directories (or files), then deterministic
// pseudo-random inputs and mutations of the corpus through the same
// LLVMFuzzerTestOneInput.
//
//   elf_fuzz_replay_test [--runs=N] [--seed=S] [--max_len=L] DIR_OR_FILE...
//
// Exit status 0 when every input ran (a bug aborts, under ASan with a
// report). Fails if the corpus is non-empty and no seed parsed as an
// executable: the harness would then be testing little.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" uint64_t BulkheadFuzzUsefulInputs();

namespace {

using Bytes = std::vector<uint8_t>;

uint64_t Mix(uint64_t& state) {  // splitmix64
  uint64_t x = (state += 0x9E3779B97F4A7C15ull);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

bool ReadFile(const std::string& path, Bytes* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

std::vector<std::string> ListInputs(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "replay: cannot stat %s\n", path.c_str());
    std::exit(2);
  }
  if (!S_ISDIR(st.st_mode)) return {path};
  std::vector<std::string> files;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) {
    std::fprintf(stderr, "replay: cannot open %s\n", path.c_str());
    std::exit(2);
  }
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string p = path + "/" + e->d_name;
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) files.push_back(p);
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

// Values on the edges of ELF's checks: page sizes, TASK_SIZE, phnum limits.
constexpr uint64_t kInteresting[] = {
    0, 1, 2, 3, 6, 7, 8, 16, 0x38, 0x40, 0x48, 73, 74, 0xff, 0x100, 0xfff, 0x1000, 0x1001, 0x2000,
    0x200000, 0x400000, 0x7fff, 0xffff, 0x10000, 0x7ffffffff000ull, 0x7ffffffff001ull, 0x800000000000ull,
    0x555555554000ull, 0xfffffffffffff000ull, 0x7fffffffffffffffull, 0xffffffffffffffffull, 0xfffffffffffffff8ull};

void Mutate(Bytes* b, const std::vector<Bytes>& corpus, uint64_t& rng, size_t max_len) {
  const int rounds = 1 + static_cast<int>(Mix(rng) % 6);
  for (int r = 0; r < rounds; ++r) {
    const size_t n = b->size();
    switch (Mix(rng) % 8) {
      case 0:
        if (n) (*b)[Mix(rng) % n] ^= static_cast<uint8_t>(1u << (Mix(rng) % 8));
        break;
      case 1:
        if (n) (*b)[Mix(rng) % n] = static_cast<uint8_t>(Mix(rng));
        break;
      case 2:
      case 3: {  // an interesting 1/2/4/8-byte value, aligned as ELF fields are
        const size_t width = size_t{1} << (Mix(rng) % 4);
        if (n < width) break;
        uint64_t v = kInteresting[Mix(rng) % std::size(kInteresting)];
        if (Mix(rng) % 4 == 0) v += Mix(rng) % 5 - 2;
        size_t at = Mix(rng) % (n - width + 1);
        if (Mix(rng) % 2) at &= ~(width - 1);
        std::memcpy(b->data() + at, &v, width);
        break;
      }
      case 4: {
        const size_t k = 1 + Mix(rng) % 16;
        const size_t at = n ? Mix(rng) % (n + 1) : 0;
        Bytes ins(k);
        for (auto& c : ins) c = static_cast<uint8_t>(Mix(rng));
        b->insert(b->begin() + static_cast<long>(at), ins.begin(), ins.end());
        break;
      }
      case 5: {
        if (!n) break;
        const size_t at = Mix(rng) % n;
        const size_t k = 1 + Mix(rng) % std::min<size_t>(n - at, 64);
        b->erase(b->begin() + static_cast<long>(at), b->begin() + static_cast<long>(at + k));
        break;
      }
      case 6: {
        if (corpus.empty()) break;
        const Bytes& o = corpus[Mix(rng) % corpus.size()];
        if (o.empty()) break;
        const size_t cut = n ? Mix(rng) % n : 0;
        const size_t from = Mix(rng) % o.size();
        b->resize(cut);
        b->insert(b->end(), o.begin() + static_cast<long>(from), o.end());
        break;
      }
      case 7:
        if (n) b->resize(Mix(rng) % n);
        break;
    }
  }
  if (b->size() > max_len) b->resize(max_len);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t runs = 20000;
  uint64_t seed = 0x62756c6b68656164ull;  // "bulkhead"
  size_t max_len = 4096;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--runs=", 0) == 0) {
      runs = std::strtoull(a.c_str() + 7, nullptr, 10);
    } else if (a.rfind("--seed=", 0) == 0) {
      seed = std::strtoull(a.c_str() + 7, nullptr, 0);
    } else if (a.rfind("--max_len=", 0) == 0) {
      max_len = std::strtoull(a.c_str() + 10, nullptr, 10);
    } else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "usage: %s [--runs=N] [--seed=S] [--max_len=L] DIR_OR_FILE...\n", argv[0]);
      return 2;
    } else {
      paths.push_back(a);
    }
  }
  if (const char* env = std::getenv("BULKHEAD_FUZZ_REPLAY_RUNS")) runs = std::strtoull(env, nullptr, 10);

  std::vector<Bytes> corpus;
  for (const auto& p : paths) {
    for (const auto& f : ListInputs(p)) {
      Bytes b;
      if (!ReadFile(f, &b)) {
        std::fprintf(stderr, "replay: cannot read %s\n", f.c_str());
        return 2;
      }
      std::fprintf(stderr, "replay: %s (%zu bytes)\n", f.c_str(), b.size());
      LLVMFuzzerTestOneInput(b.data(), b.size());
      corpus.push_back(std::move(b));
    }
  }
  const uint64_t seed_parses = BulkheadFuzzUsefulInputs();

  uint64_t rng = seed;
  for (uint64_t i = 0; i < runs; ++i) {
    Bytes b;
    if (corpus.empty() || Mix(rng) % 4 == 0) {
      b.resize(Mix(rng) % std::min<size_t>(max_len + 1, 1024));
      for (auto& c : b) c = static_cast<uint8_t>(Mix(rng));
    } else {
      b = corpus[Mix(rng) % corpus.size()];
      Mutate(&b, corpus, rng, max_len);
    }
    LLVMFuzzerTestOneInput(b.data(), b.size());
  }
  std::printf("replay: %zu seeds (%llu parsed as executables), %llu generated inputs, %llu parsed in all\n",
              corpus.size(), (unsigned long long)seed_parses, (unsigned long long)runs,
              (unsigned long long)BulkheadFuzzUsefulInputs());
  if (!corpus.empty() && seed_parses == 0) {
    std::fprintf(stderr, "replay: FAIL: no seed parsed; the harness reaches little of the loader\n");
    return 1;
  }
  return 0;
}
