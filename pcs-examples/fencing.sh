# shellcheck shell=sh
# Fencing for the recipes in this directory (sourced, not run): one device,
# and optionally a network heuristic in front of it.
#
#   FENCE_AGENT, FENCE_PARAMS  the real fence device (IPMI, a PDU, ...); its
#                              parameters name the nodes it can fence
#                              (pcmk_host_list=...)
#   PING_TARGETS               optional: addresses on the service network
#                              (its gateway, a switch) that a node must reach
#                              before it may fence another one
#   PING_PARAMS                fence_heuristics_ping's probe settings; the
#                              default is one probe per target with a 1-s
#                              timeout (the agent's own default, 10 probes
#                              1 s apart, adds 9 s to every fencing); a
#                              lost probe fails that fencing attempt, and
#                              Pacemaker tries it again
#
# Why PING_TARGETS: when a node loses its service network but keeps its
# fence network (IPMI often sits on a separate management LAN), both nodes
# of a two-node cluster see the other one gone and race to fence each other.
# If the isolated node wins, it keeps the service where no client can reach
# it. With fence_heuristics_ping (fence-agents) in the same fencing level,
# ahead of the real device, a node that cannot reach PING_TARGETS never
# fences: the node that still serves clients wins the race.
#
# Usage, after `pcs_f` is defined:  hanfs_fencing NAME NODE...
hanfs_fencing() {
  _name=$1; shift
  : "${FENCE_AGENT:?set FENCE_AGENT and FENCE_PARAMS to your fence device (see the Fencing section)}"
  # shellcheck disable=SC2086  # FENCE_PARAMS: a list of name=value words
  pcs_f stonith create "$_name" "$FENCE_AGENT" ${FENCE_PARAMS:-}
  if [ -n "${PING_TARGETS:-}" ]; then
    _nodes=$(echo "$*" | tr ' ' ',')
    # shellcheck disable=SC2086  # PING_PARAMS: a list of name=value words
    pcs_f stonith create "${_name}-ping" fence_heuristics_ping \
        ping_targets="$(echo "$PING_TARGETS" | tr ' ' ',')" pcmk_host_list="$_nodes" \
        ${PING_PARAMS:-ping_count=1 ping_good_count=1 ping_timeout=1}
    for _n in "$@"; do
      pcs_f stonith level add 1 "$_n" "${_name}-ping" "$_name"
    done
  fi
  pcs_f property set stonith-enabled=true
}
