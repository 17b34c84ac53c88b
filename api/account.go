package api

import "github.com/gofiber/fiber/v2"

// accountRoutes mounts the routes of a device identity upgraded to an account.
func (s *Server) accountRoutes(app *fiber.App, v1 fiber.Router) {}
