package example;

import java.math.BigDecimal;
import java.util.List;
import java.util.Map;

/** A POJO with private fields and accessors, public fields, nested lists, an enum and a map. */
public class Order {
    public enum Status { NEW, PAID, SHIPPED }

    public static class Item {
        private String sku;
        public int count;

        public String getSku() {
            return sku;
        }

        public void setSku(String sku) {
            this.sku = sku;
        }
    }

    private String orderId;
    public int quantity;
    private List<Item> items;
    private Status status;
    private BigDecimal price;
    private Map<String, String> tags;
    private boolean gift;
    private long createdAt;

    public String getOrderId() {
        return orderId;
    }

    public void setOrderId(String orderId) {
        this.orderId = orderId;
    }

    public List<Item> getItems() {
        return items;
    }

    public void setItems(List<Item> items) {
        this.items = items;
    }

    public Status getStatus() {
        return status;
    }

    public void setStatus(Status status) {
        this.status = status;
    }

    public BigDecimal getPrice() {
        return price;
    }

    public void setPrice(BigDecimal price) {
        this.price = price;
    }

    public Map<String, String> getTags() {
        return tags;
    }

    public void setTags(Map<String, String> tags) {
        this.tags = tags;
    }

    public boolean isGift() {
        return gift;
    }

    public void setGift(boolean gift) {
        this.gift = gift;
    }

    public long getCreatedAt() {
        return createdAt;
    }

    private void setCreatedAt(long createdAt) {
        this.createdAt = createdAt;
    }
}
