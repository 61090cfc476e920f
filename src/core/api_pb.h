/*
 * api_pb: C structs and static pb tables for api/destination.proto
 * (package meshd.destination.v1), written by hand.
 *
 * Each message M has a struct api_pb_<m> and a table api_pb_<m>_desc for
 * core/pb (pb_decode, pb_encode, pb_equal). Member names are the proto
 * field names. Conventions (see core/pb.h for the codec's contracts):
 *  - string/bytes fields are struct str slices; after pb_decode they point
 *    into the input buffer.
 *  - repeated fields and maps are <name> (array) + n_<name> (count); after
 *    pb_decode the arrays live in the caller's pb_arena.
 *  - singular message fields are embedded with a has_<name> presence flag.
 *  - a oneof <o> is a uint32_t <o> holding the field number of the member
 *    that is set (the API_PB_* constants below), 0 when none.
 *
 * Field numbers MUST match api/destination.proto; test/unit/t_pb.c checks
 * the tables against encodings made by Python's protobuf runtime from that
 * file (test/unit/pb_vectors.h, regenerated at test time by
 * test/e2e/pb_python.sh).
 */
#ifndef MESHD_CORE_API_PB_H
#define MESHD_CORE_API_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/pb.h"
#include "core/str.h"

/* gRPC method paths of service meshd.destination.v1.Destination. */
#define API_PB_DESTINATION_SERVICE "meshd.destination.v1.Destination"
#define API_PB_DESTINATION_GET "/meshd.destination.v1.Destination/Get"
#define API_PB_DESTINATION_GET_PROFILE \
	"/meshd.destination.v1.Destination/GetProfile"

/* Default WeightedAddr.weight (Linkerd's). */
#define API_PB_WEIGHT_DEFAULT 10000u

/* One entry of a map<string, string>. */
struct api_pb_label {
	struct str key;          /* 1 */
	struct str value;        /* 2 */
};

/* google.protobuf.Duration */
struct api_pb_duration {
	int64_t seconds;         /* 1 */
	int32_t nanos;           /* 2 */
};

/* An empty message (ProtocolHint.H2, ProtocolHint.Opaque). */
struct api_pb_empty {
	uint8_t unused_;         /* C needs a member; never on the wire */
};

struct api_pb_get_destination {
	struct str scheme;        /* 1 */
	struct str path;          /* 2 */
	struct str context_token; /* 3 */
};

struct api_pb_tcp_address {
	struct str ip;           /* 1: 4 or 16 bytes, network order */
	uint32_t port;           /* 2 */
};

struct api_pb_dns_like_identity {
	struct str name;         /* 1 */
};

#define API_PB_TLS_IDENTITY_DNS_LIKE 1
struct api_pb_tls_identity {
	uint32_t strategy;       /* oneof: API_PB_TLS_IDENTITY_* or 0 */
	struct api_pb_dns_like_identity dns_like_identity; /* 1 */
};

#define API_PB_PROTOCOL_HINT_H2     1
#define API_PB_PROTOCOL_HINT_OPAQUE 2
struct api_pb_protocol_hint {
	uint32_t protocol;       /* oneof: API_PB_PROTOCOL_HINT_* or 0 */
	struct api_pb_empty h2;      /* 1 */
	struct api_pb_empty opaque;  /* 2 */
};

struct api_pb_weighted_addr {
	struct api_pb_tcp_address addr;          /* 1 */
	bool has_addr;
	uint32_t weight;                         /* 3 */
	struct api_pb_label *metric_labels;      /* 4: map */
	size_t n_metric_labels;
	struct api_pb_tls_identity tls_identity; /* 5 */
	bool has_tls_identity;
	struct api_pb_protocol_hint protocol_hint; /* 6 */
	bool has_protocol_hint;
};

struct api_pb_weighted_addr_set {
	struct api_pb_weighted_addr *addrs;      /* 1 */
	size_t n_addrs;
	struct api_pb_label *metric_labels;      /* 2: map */
	size_t n_metric_labels;
};

struct api_pb_addr_set {
	struct api_pb_tcp_address *addrs;        /* 1 */
	size_t n_addrs;
};

struct api_pb_no_endpoints {
	bool exists;                             /* 1 */
};

#define API_PB_UPDATE_ADD          1
#define API_PB_UPDATE_REMOVE       2
#define API_PB_UPDATE_NO_ENDPOINTS 3
struct api_pb_update {
	uint32_t update;         /* oneof: API_PB_UPDATE_* or 0 */
	struct api_pb_weighted_addr_set add;     /* 1 */
	struct api_pb_addr_set remove;           /* 2 */
	struct api_pb_no_endpoints no_endpoints; /* 3 */
};

#define API_PB_PATH_MATCH_EXACT  1
#define API_PB_PATH_MATCH_PREFIX 2
struct api_pb_path_match {
	uint32_t kind;           /* oneof: API_PB_PATH_MATCH_* or 0 */
	struct str exact;        /* 1 */
	struct str prefix;       /* 2 */
};

struct api_pb_request_match {
	struct api_pb_path_match path;           /* 4 */
	bool has_path;
	struct str method;                       /* 5 */
};

struct api_pb_route {
	struct api_pb_request_match condition;   /* 1 */
	bool has_condition;
	struct api_pb_label *metrics_labels;     /* 3: map */
	size_t n_metrics_labels;
	bool is_retryable;                       /* 4 */
	struct api_pb_duration timeout;          /* 5 */
	bool has_timeout;
};

struct api_pb_retry_budget {
	float retry_ratio;                       /* 1 */
	uint32_t min_retries_per_second;         /* 2 */
	struct api_pb_duration ttl;              /* 3 */
	bool has_ttl;
};

struct api_pb_destination_profile {
	struct api_pb_route *routes;             /* 1 */
	size_t n_routes;
	struct api_pb_retry_budget retry_budget; /* 2 */
	bool has_retry_budget;
	bool opaque_protocol;                    /* 4 */
	struct str fully_qualified_name;         /* 5 */
	struct api_pb_weighted_addr endpoint;    /* 6 */
	bool has_endpoint;
};

extern const struct pb_msg_desc api_pb_label_desc;
extern const struct pb_msg_desc api_pb_duration_desc;
extern const struct pb_msg_desc api_pb_h2_desc;
extern const struct pb_msg_desc api_pb_opaque_desc;
extern const struct pb_msg_desc api_pb_get_destination_desc;
extern const struct pb_msg_desc api_pb_tcp_address_desc;
extern const struct pb_msg_desc api_pb_dns_like_identity_desc;
extern const struct pb_msg_desc api_pb_tls_identity_desc;
extern const struct pb_msg_desc api_pb_protocol_hint_desc;
extern const struct pb_msg_desc api_pb_weighted_addr_desc;
extern const struct pb_msg_desc api_pb_weighted_addr_set_desc;
extern const struct pb_msg_desc api_pb_addr_set_desc;
extern const struct pb_msg_desc api_pb_no_endpoints_desc;
extern const struct pb_msg_desc api_pb_update_desc;
extern const struct pb_msg_desc api_pb_path_match_desc;
extern const struct pb_msg_desc api_pb_request_match_desc;
extern const struct pb_msg_desc api_pb_route_desc;
extern const struct pb_msg_desc api_pb_retry_budget_desc;
extern const struct pb_msg_desc api_pb_destination_profile_desc;

/*
 * The value of <key> in a decoded map of <n> entries, protobuf's way: the
 * last entry with that key wins. Returns 1 and sets <*value>, or 0 when
 * the key is absent.
 */
int api_pb_label_get(const struct api_pb_label *labels, size_t n,
                     struct str key, struct str *value);

#endif
