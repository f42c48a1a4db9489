// "Suggest groups" in the New batch form: POST /parallel/plan for the chosen canvas; its groups replace the form's
// groups, each agent still editable and each group removable before Start.

/** One line about a plan: groups, clustering quality, what was left out. */
export function planSummary(plan) {
  const { k, silhouette, warning } = plan.clustering;
  const left = plan.left_out.length ? `; ${plan.left_out.length} node(s) left out` : '';
  return (
    `${plan.groups.length} group(s) suggested (k=${k}, silhouette ${silhouette ?? 'n/a'})${left}.` +
    (warning ? ` ${warning}.` : '') +
    ' Change an agent or remove a group before you start.'
  );
}

/** The form's groups from a plan: agent, node ids, and what the table shows of the suggestion. */
export function groupsOfPlan(plan) {
  return plan.groups.map((g) => ({
    agent: g.agent_type,
    nodeIds: g.node_ids,
    name: g.name,
    suggested: true,
    title: `${g.priority} priority · confidence ${g.confidence.toFixed(2)} · ${g.reason}`,
  }));
}

/**
 * Wires the button: asks for a plan of `canvasSelect`'s canvas and hands its groups to `onGroups` (which fills the
 * form). `status` says what happened; a problem is shown by `showError`.
 */
export function attachPlanner({ button, status, canvasSelect, api, onGroups, announce, showError }) {
  button.addEventListener('click', async () => {
    if (!canvasSelect.value) {
      status.textContent = 'Choose a canvas first.';
      return;
    }
    button.disabled = true;
    status.textContent = 'Suggesting groups…';
    try {
      const plan = await api('POST', '/parallel/plan', { canvas_path: canvasSelect.value });
      onGroups(groupsOfPlan(plan));
      status.textContent = planSummary(plan);
      announce(`${plan.groups.length} group(s) suggested`);
    } catch (err) {
      status.textContent = '';
      showError(err, status.parentElement);
    } finally {
      button.disabled = false;
    }
  });
}
