// Test fixture: the shape of aws-lambda-java-events' ScheduledEvent ("detail-type" in JSON).
package com.amazonaws.services.lambda.runtime.events;

import java.util.List;
import java.util.Map;

public class ScheduledEvent {
    private String id;
    private String detailType;
    private String source;
    private List<String> resources;
    private Map<String, Object> detail;

    public String getId() {
        return id;
    }

    public void setId(String id) {
        this.id = id;
    }

    public String getDetailType() {
        return detailType;
    }

    public void setDetailType(String detailType) {
        this.detailType = detailType;
    }

    public String getSource() {
        return source;
    }

    public void setSource(String source) {
        this.source = source;
    }

    public List<String> getResources() {
        return resources;
    }

    public void setResources(List<String> resources) {
        this.resources = resources;
    }

    public Map<String, Object> getDetail() {
        return detail;
    }

    public void setDetail(Map<String, Object> detail) {
        this.detail = detail;
    }
}
