package api

import "github.com/gofiber/fiber/v2"

// dashboardRoutes mounts the routes of the staff dashboard.
func (s *Server) dashboardRoutes(app *fiber.App, v1 fiber.Router) {}
