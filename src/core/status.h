// Status lives in the public headers (include/akv/status.h); this alias keeps internal includes short.
#pragma once
#include "akv/status.h"
