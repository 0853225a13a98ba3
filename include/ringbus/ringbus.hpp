// Everything a ringbus user needs.
#pragma once

#include "ringbus/bus.hpp"
#include "ringbus/consumer.hpp"
#include "ringbus/group.hpp"
#include "ringbus/options.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/record.hpp"
#include "ringbus/records.hpp"
#include "ringbus/shared_producer.hpp"
#include "ringbus/stats.hpp"
#include "ringbus/status.hpp"
