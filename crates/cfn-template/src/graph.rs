//! Resource dependencies (`Ref`, `Fn::GetAtt`, `${...}` in `Fn::Sub`, `DependsOn`), creation
//! order and deletion order.

use indexmap::{IndexMap, IndexSet};
use std::collections::HashMap;

use crate::error::{Result, TemplateError};
use crate::refs::{References, collect};
use crate::template::Template;

/// Who depends on whom among the resources of one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyGraph {
    /// Resource → the resources it needs, in template order.
    dependencies: IndexMap<String, Vec<String>>,
}

impl DependencyGraph {
    /// The graph of the resources whose condition holds. `conditions` decides which branch of
    /// each `Fn::If` counts. A reference to a resource that is not in the stack is an error.
    pub fn build(template: &Template, conditions: &HashMap<String, bool>) -> Result<Self> {
        let active = |id: &str| {
            template.resources.get(id).is_some_and(|r| {
                r.condition
                    .as_ref()
                    .is_none_or(|c| conditions.get(c).copied().unwrap_or(false))
            })
        };
        let mut dependencies = IndexMap::new();
        let mut unresolved = IndexSet::new();
        for (id, resource) in &template.resources {
            if !active(id) {
                continue;
            }
            let mut refs = References::default();
            collect(
                &serde_json::Value::Object(resource.properties.clone()),
                Some(conditions),
                false,
                &mut refs,
            );
            if let Some(p) = &resource.update_policy {
                collect(p, Some(conditions), false, &mut refs);
            }
            let mut deps: IndexSet<String> = IndexSet::new();
            for target in refs
                .targets()
                .chain(resource.depends_on.iter().map(String::as_str))
            {
                if template.resources.contains_key(target) {
                    if active(target) {
                        deps.insert(target.to_string());
                    } else {
                        unresolved.insert(target.to_string());
                    }
                }
            }
            dependencies.insert(id.clone(), deps.into_iter().collect());
        }
        if !unresolved.is_empty() {
            return Err(TemplateError::UnresolvedResources {
                names: unresolved.into_iter().collect(),
                block: "Resources",
            });
        }
        let graph = Self { dependencies };
        graph.check_cycles()?;
        Ok(graph)
    }

    /// The graph of every resource, taking both branches of every `Fn::If` (what
    /// `ValidateTemplate` checks before any condition is known).
    pub fn build_static(template: &Template) -> Result<Self> {
        let mut dependencies = IndexMap::new();
        for (id, resource) in &template.resources {
            let mut refs = References::default();
            collect(
                &serde_json::Value::Object(resource.properties.clone()),
                None,
                false,
                &mut refs,
            );
            let mut deps: IndexSet<String> = IndexSet::new();
            for target in refs
                .targets()
                .chain(resource.depends_on.iter().map(String::as_str))
            {
                if template.resources.contains_key(target) {
                    deps.insert(target.to_string());
                }
            }
            dependencies.insert(id.clone(), deps.into_iter().collect());
        }
        let graph = Self { dependencies };
        graph.check_cycles()?;
        Ok(graph)
    }

    /// Resources in the graph, in template order.
    pub fn resources(&self) -> impl Iterator<Item = &str> {
        self.dependencies.keys().map(String::as_str)
    }

    /// What a resource needs before it can be created.
    pub fn dependencies(&self, logical_id: &str) -> &[String] {
        self.dependencies.get(logical_id).map_or(&[], Vec::as_slice)
    }

    /// Resources that need this one (they must be deleted before it).
    pub fn dependents(&self, logical_id: &str) -> Vec<&str> {
        self.dependencies
            .iter()
            .filter(|(_, deps)| deps.iter().any(|d| d == logical_id))
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// Groups of resources that can be created together: every resource comes in a later
    /// group than everything it needs. Within a group, template order.
    pub fn creation_waves(&self) -> Vec<Vec<String>> {
        let mut level: HashMap<&str, usize> = HashMap::new();
        let mut waves: Vec<Vec<String>> = Vec::new();
        let mut remaining: Vec<&str> = self.resources().collect();
        while !remaining.is_empty() {
            let mut next = Vec::new();
            let mut placed = Vec::new();
            for id in remaining {
                let deps = self.dependencies(id);
                if deps.iter().all(|d| level.contains_key(d.as_str())) {
                    let l = deps
                        .iter()
                        .map(|d| level[d.as_str()] + 1)
                        .max()
                        .unwrap_or(0);
                    placed.push((id, l));
                } else {
                    next.push(id);
                }
            }
            if placed.is_empty() {
                break; // cycles were rejected when the graph was built
            }
            for (id, l) in placed {
                level.insert(id, l);
                if waves.len() <= l {
                    waves.resize_with(l + 1, Vec::new);
                }
                waves[l].push(id.to_string());
            }
            remaining = next;
        }
        for wave in &mut waves {
            wave.sort_by_key(|id| self.dependencies.get_index_of(id.as_str()));
        }
        waves
    }

    /// One creation order (dependencies first).
    pub fn creation_order(&self) -> Vec<String> {
        self.creation_waves().into_iter().flatten().collect()
    }

    /// The reverse of the creation order (dependents first).
    pub fn deletion_order(&self) -> Vec<String> {
        let mut order = self.creation_order();
        order.reverse();
        order
    }

    fn check_cycles(&self) -> Result<()> {
        let cyclic = self.cyclic_resources();
        if cyclic.is_empty() {
            Ok(())
        } else {
            Err(TemplateError::CircularDependency { names: cyclic })
        }
    }

    /// Resources on a cycle (strongly connected components of more than one resource, or a
    /// resource that needs itself), in template order.
    fn cyclic_resources(&self) -> Vec<String> {
        let n = self.dependencies.len();
        let index_of = |id: &str| self.dependencies.get_index_of(id);
        let edges: Vec<Vec<usize>> = self
            .dependencies
            .values()
            .map(|deps| deps.iter().filter_map(|d| index_of(d)).collect())
            .collect();
        // Tarjan's algorithm, iterative.
        let mut index = vec![usize::MAX; n];
        let mut low = vec![0usize; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next_index = 0usize;
        let mut cyclic = vec![false; n];
        for root in 0..n {
            if index[root] != usize::MAX {
                continue;
            }
            let mut work: Vec<(usize, usize)> = vec![(root, 0)];
            while let Some(&mut (v, ref mut edge)) = work.last_mut() {
                if *edge == 0 && index[v] == usize::MAX {
                    index[v] = next_index;
                    low[v] = next_index;
                    next_index += 1;
                    stack.push(v);
                    on_stack[v] = true;
                }
                if *edge < edges[v].len() {
                    let w = edges[v][*edge];
                    *edge += 1;
                    if index[w] == usize::MAX {
                        work.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 || edges[v].contains(&v) {
                        for w in component {
                            cyclic[w] = true;
                        }
                    }
                }
            }
        }
        self.dependencies
            .keys()
            .enumerate()
            .filter(|(i, _)| cyclic[*i])
            .map(|(_, id)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(v: serde_json::Value) -> Template {
        Template::from_value(v).expect("template")
    }

    #[test]
    fn orders_by_references_and_depends_on() {
        let t = template(json!({"Resources": {
            "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
            "Role": {"Type": "AWS::IAM::Role"},
            "Perm": {"Type": "AWS::Lambda::Permission", "Properties": {"FunctionName": {"Fn::Sub": "${Fn}"}}},
            "Topic": {"Type": "AWS::SNS::Topic", "DependsOn": ["Perm"]}
        }}));
        let g = DependencyGraph::build(&t, &HashMap::new()).expect("graph");
        assert_eq!(g.creation_order(), ["Role", "Fn", "Perm", "Topic"]);
        assert_eq!(g.deletion_order(), ["Topic", "Perm", "Fn", "Role"]);
        assert_eq!(g.dependents("Role"), ["Fn"]);
        assert_eq!(
            g.creation_waves(),
            vec![vec!["Role"], vec!["Fn"], vec!["Perm"], vec!["Topic"]]
        );
    }

    #[test]
    fn independent_resources_share_a_wave() {
        let t = template(json!({"Resources": {
            "A": {"Type": "AWS::SQS::Queue"},
            "B": {"Type": "AWS::SQS::Queue"},
            "C": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"Queues": [{"Ref": "A"}, {"Ref": "B"}]}}
        }}));
        let g = DependencyGraph::build(&t, &HashMap::new()).expect("graph");
        assert_eq!(g.creation_waves(), vec![vec!["A", "B"], vec!["C"]]);
    }

    #[test]
    fn cycles_are_named() {
        let t = template(json!({"Resources": {
            "T": {"Type": "AWS::SNS::Topic"},
            "A": {"Type": "AWS::SQS::Queue", "Properties": {"X": {"Fn::GetAtt": ["B", "Arn"]}}},
            "B": {"Type": "AWS::SQS::Queue", "Properties": {"X": {"Ref": "C"}}},
            "C": {"Type": "AWS::SQS::Queue", "DependsOn": "A"},
            "S": {"Type": "AWS::SQS::Queue", "DependsOn": "S"}
        }}));
        let err = DependencyGraph::build_static(&t).expect_err("cycle");
        assert_eq!(
            err.to_string(),
            "Circular dependency between resources: [A, B, C, S]"
        );
    }

    #[test]
    fn conditions_prune_branches_and_resources() {
        let t = template(json!({
            "Conditions": {"On": {"Fn::Equals": ["a", "b"]}},
            "Resources": {
                "Opt": {"Type": "AWS::SQS::Queue", "Condition": "On"},
                "User": {"Type": "AWS::SNS::Topic", "Properties": {"N": {"Fn::If": ["On", {"Ref": "Opt"}, "x"]}}},
                "Bad": {"Type": "AWS::SNS::Topic", "Properties": {"N": {"Ref": "Opt"}}}
            }
        }));
        let off: HashMap<String, bool> = [("On".to_string(), false)].into_iter().collect();
        let err = DependencyGraph::build(&t, &off)
            .expect_err("Bad refers to a resource not in the stack");
        assert_eq!(
            err.to_string(),
            "Template format error: Unresolved resource dependencies [Opt] in the Resources block of the template"
        );
        let on: HashMap<String, bool> = [("On".to_string(), true)].into_iter().collect();
        let g = DependencyGraph::build(&t, &on).expect("graph");
        assert_eq!(g.dependencies("User"), ["Opt"]);
    }
}
