// heap_sample.cc — extern "C" shim over MallocExtension::GetHeapSample (C++-only API).
//
// Kept to one function so the rest of primed stays C. No exception may cross into C: the
// std::string growth that GetHeapSample does is the only thing that can throw (bad_alloc).
#include "heap_sample.h"

#include <gperftools/malloc_extension.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" int heap_sample_get(char **out, size_t *len)
{
    try {
        std::string s;
        MallocExtension::instance()->GetHeapSample(&s);
        char *buf = static_cast<char *>(std::malloc(s.size() + 1));
        if (!buf) return -ENOMEM;
        std::memcpy(buf, s.data(), s.size());
        buf[s.size()] = '\0';
        *out = buf; // ownership passes to the caller
        *len = s.size();
        return 0;
    } catch (...) {
        return -ENOMEM;
    }
}
