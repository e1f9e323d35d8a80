"""The stack planner: `plan_stack(stack_name, config)` decides the whole edge of a stack once; the
values it returns live in `infra.stack_plan`, which is all a component imports."""
