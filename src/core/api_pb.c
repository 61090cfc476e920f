/*
 * api_pb: the pb tables of api/destination.proto (contracts in
 * core/api_pb.h). Each table lists the fields in ascending number, as
 * core/pb requires; the numbers are the proto's, and MUST stay so.
 */
#include <stddef.h>

#include "core/api_pb.h"

#define DESC(sym, pname, T, tab) \
	const struct pb_msg_desc sym = { pname, sizeof(T), \
	                                 sizeof(tab) / sizeof((tab)[0]), tab }
#define PKG "meshd.destination.v1."

static const struct pb_field label_fields[] = {
	PB_FIELD(struct api_pb_label, key, 1, PB_K_STRING),
	PB_FIELD(struct api_pb_label, value, 2, PB_K_STRING),
};
DESC(api_pb_label_desc, "map<string,string> entry", struct api_pb_label,
     label_fields);

static const struct pb_field duration_fields[] = {
	PB_FIELD(struct api_pb_duration, seconds, 1, PB_K_INT64),
	PB_FIELD(struct api_pb_duration, nanos, 2, PB_K_INT32),
};
DESC(api_pb_duration_desc, "google.protobuf.Duration",
     struct api_pb_duration, duration_fields);

/* Empty messages: a table with no field (every field is unknown). */
const struct pb_msg_desc api_pb_h2_desc = {
	PKG "ProtocolHint.H2", sizeof(struct api_pb_empty), 0, NULL };
const struct pb_msg_desc api_pb_opaque_desc = {
	PKG "ProtocolHint.Opaque", sizeof(struct api_pb_empty), 0, NULL };

static const struct pb_field get_destination_fields[] = {
	PB_FIELD(struct api_pb_get_destination, scheme, 1, PB_K_STRING),
	PB_FIELD(struct api_pb_get_destination, path, 2, PB_K_STRING),
	PB_FIELD(struct api_pb_get_destination, context_token, 3,
	         PB_K_STRING),
};
DESC(api_pb_get_destination_desc, PKG "GetDestination",
     struct api_pb_get_destination, get_destination_fields);

static const struct pb_field tcp_address_fields[] = {
	PB_FIELD(struct api_pb_tcp_address, ip, 1, PB_K_BYTES),
	PB_FIELD(struct api_pb_tcp_address, port, 2, PB_K_UINT32),
};
DESC(api_pb_tcp_address_desc, PKG "TcpAddress", struct api_pb_tcp_address,
     tcp_address_fields);

static const struct pb_field dns_like_identity_fields[] = {
	PB_FIELD(struct api_pb_dns_like_identity, name, 1, PB_K_STRING),
};
DESC(api_pb_dns_like_identity_desc, PKG "TlsIdentity.DnsLikeIdentity",
     struct api_pb_dns_like_identity, dns_like_identity_fields);

static const struct pb_field tls_identity_fields[] = {
	PB_ONEOF(struct api_pb_tls_identity, dns_like_identity, strategy, 1,
	         PB_K_MESSAGE, &api_pb_dns_like_identity_desc),
};
DESC(api_pb_tls_identity_desc, PKG "TlsIdentity", struct api_pb_tls_identity,
     tls_identity_fields);

static const struct pb_field protocol_hint_fields[] = {
	PB_ONEOF(struct api_pb_protocol_hint, h2, protocol, 1, PB_K_MESSAGE,
	         &api_pb_h2_desc),
	PB_ONEOF(struct api_pb_protocol_hint, opaque, protocol, 2,
	         PB_K_MESSAGE, &api_pb_opaque_desc),
};
DESC(api_pb_protocol_hint_desc, PKG "ProtocolHint",
     struct api_pb_protocol_hint, protocol_hint_fields);

static const struct pb_field weighted_addr_fields[] = {
	PB_MSG(struct api_pb_weighted_addr, addr, has_addr, 1,
	       &api_pb_tcp_address_desc),
	PB_FIELD(struct api_pb_weighted_addr, weight, 3, PB_K_UINT32),
	PB_REP(struct api_pb_weighted_addr, metric_labels, n_metric_labels, 4,
	       PB_K_MESSAGE, &api_pb_label_desc),
	PB_MSG(struct api_pb_weighted_addr, tls_identity, has_tls_identity, 5,
	       &api_pb_tls_identity_desc),
	PB_MSG(struct api_pb_weighted_addr, protocol_hint, has_protocol_hint,
	       6, &api_pb_protocol_hint_desc),
};
DESC(api_pb_weighted_addr_desc, PKG "WeightedAddr",
     struct api_pb_weighted_addr, weighted_addr_fields);

static const struct pb_field weighted_addr_set_fields[] = {
	PB_REP(struct api_pb_weighted_addr_set, addrs, n_addrs, 1,
	       PB_K_MESSAGE, &api_pb_weighted_addr_desc),
	PB_REP(struct api_pb_weighted_addr_set, metric_labels,
	       n_metric_labels, 2, PB_K_MESSAGE, &api_pb_label_desc),
};
DESC(api_pb_weighted_addr_set_desc, PKG "WeightedAddrSet",
     struct api_pb_weighted_addr_set, weighted_addr_set_fields);

static const struct pb_field addr_set_fields[] = {
	PB_REP(struct api_pb_addr_set, addrs, n_addrs, 1, PB_K_MESSAGE,
	       &api_pb_tcp_address_desc),
};
DESC(api_pb_addr_set_desc, PKG "AddrSet", struct api_pb_addr_set,
     addr_set_fields);

static const struct pb_field no_endpoints_fields[] = {
	PB_FIELD(struct api_pb_no_endpoints, exists, 1, PB_K_BOOL),
};
DESC(api_pb_no_endpoints_desc, PKG "NoEndpoints", struct api_pb_no_endpoints,
     no_endpoints_fields);

static const struct pb_field update_fields[] = {
	PB_ONEOF(struct api_pb_update, add, update, 1, PB_K_MESSAGE,
	         &api_pb_weighted_addr_set_desc),
	PB_ONEOF(struct api_pb_update, remove, update, 2, PB_K_MESSAGE,
	         &api_pb_addr_set_desc),
	PB_ONEOF(struct api_pb_update, no_endpoints, update, 3, PB_K_MESSAGE,
	         &api_pb_no_endpoints_desc),
};
DESC(api_pb_update_desc, PKG "Update", struct api_pb_update, update_fields);

static const struct pb_field path_match_fields[] = {
	PB_ONEOF(struct api_pb_path_match, exact, kind, 1, PB_K_STRING, NULL),
	PB_ONEOF(struct api_pb_path_match, prefix, kind, 2, PB_K_STRING,
	         NULL),
};
DESC(api_pb_path_match_desc, PKG "PathMatch", struct api_pb_path_match,
     path_match_fields);

static const struct pb_field request_match_fields[] = {
	PB_MSG(struct api_pb_request_match, path, has_path, 4,
	       &api_pb_path_match_desc),
	PB_FIELD(struct api_pb_request_match, method, 5, PB_K_STRING),
};
DESC(api_pb_request_match_desc, PKG "RequestMatch",
     struct api_pb_request_match, request_match_fields);

static const struct pb_field route_fields[] = {
	PB_MSG(struct api_pb_route, condition, has_condition, 1,
	       &api_pb_request_match_desc),
	PB_REP(struct api_pb_route, metrics_labels, n_metrics_labels, 3,
	       PB_K_MESSAGE, &api_pb_label_desc),
	PB_FIELD(struct api_pb_route, is_retryable, 4, PB_K_BOOL),
	PB_MSG(struct api_pb_route, timeout, has_timeout, 5,
	       &api_pb_duration_desc),
};
DESC(api_pb_route_desc, PKG "Route", struct api_pb_route, route_fields);

static const struct pb_field retry_budget_fields[] = {
	PB_FIELD(struct api_pb_retry_budget, retry_ratio, 1, PB_K_FLOAT),
	PB_FIELD(struct api_pb_retry_budget, min_retries_per_second, 2,
	         PB_K_UINT32),
	PB_MSG(struct api_pb_retry_budget, ttl, has_ttl, 3,
	       &api_pb_duration_desc),
};
DESC(api_pb_retry_budget_desc, PKG "RetryBudget", struct api_pb_retry_budget,
     retry_budget_fields);

static const struct pb_field destination_profile_fields[] = {
	PB_REP(struct api_pb_destination_profile, routes, n_routes, 1,
	       PB_K_MESSAGE, &api_pb_route_desc),
	PB_MSG(struct api_pb_destination_profile, retry_budget,
	       has_retry_budget, 2, &api_pb_retry_budget_desc),
	PB_FIELD(struct api_pb_destination_profile, opaque_protocol, 4,
	         PB_K_BOOL),
	PB_FIELD(struct api_pb_destination_profile, fully_qualified_name, 5,
	         PB_K_STRING),
	PB_MSG(struct api_pb_destination_profile, endpoint, has_endpoint, 6,
	       &api_pb_weighted_addr_desc),
};
DESC(api_pb_destination_profile_desc, PKG "DestinationProfile",
     struct api_pb_destination_profile, destination_profile_fields);

int api_pb_label_get(const struct api_pb_label *labels, size_t n,
                     struct str key, struct str *value)
{
	size_t i = n;

	while (i-- > 0) {
		if (str_eq(labels[i].key, key)) {
			*value = labels[i].value;
			return 1;
		}
	}
	return 0;
}
